package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// What an import judges content by. Both passes call the same two
// functions, so the checking pass refuses exactly what the storing pass
// would. An archive's bad content is the sender's fault, as a client's
// bad push is: the errors carry cache's ErrDigestInvalid, ErrSizeInvalid,
// ErrManifestInvalid… so that wharf import reports them as a push would.

// copyVerified copies what r yields to w (a staged file, or io.Discard on
// the checking pass) through oci's verifying reader, and returns how many
// bytes it copied. Unless they hash to d and number size (size < 0: any),
// the error is ErrDigestInvalid or ErrSizeInvalid; bytes past the size
// stop the copy at once. ctx ending stops it too.
func copyVerified(ctx context.Context, w io.Writer, d digest.Digest, size int64, r io.Reader) (int64, error) {
	if err := d.Validate(); err != nil { // "" would check the size alone
		return 0, fmt.Errorf("%q: %w: %w", d, cache.ErrDigestInvalid, err)
	}
	vr, err := oci.NewVerifyingReaderContext(ctx, r, d, size)
	if err != nil {
		return 0, fmt.Errorf("%q: %w: %w", d, cache.ErrDigestInvalid, err)
	}
	n, err := io.Copy(w, vr)
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", d, cache.BadContent(err))
	}
	return n, nil
}

// checkManifest judges a manifest before it is stored, against the blobs
// has reports (digest → size): its size, its digest (want, when set),
// tag, that it is a valid manifest of mediaType, and that every blob it
// references is there at its size. It returns the manifest's digest.
//
// It is import's rule, not a rule of OCI content: an index's children may
// be missing (only some platforms were warmed or exported), while a push
// needs every child linked to its repository; and the checking pass
// counts as present the blobs the archives hold besides the store's.
func checkManifest(tag, mediaType string, want digest.Digest, body []byte, has func(digest.Digest) (int64, bool)) (digest.Digest, error) {
	if len(body) > oci.MaxManifestSize {
		return "", fmt.Errorf("manifest over %d bytes: %w", oci.MaxManifestSize, cache.ErrTooLarge)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return "", fmt.Errorf("%q: %w: %w", want, cache.ErrDigestInvalid, err)
		}
	}
	d, err := oci.ManifestDigest(body, want)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", cache.BadContent(err))
	}
	if tag != "" && !oci.ValidTag(tag) {
		return "", fmt.Errorf("%q: %w", tag, cache.ErrTagInvalid)
	}
	p, err := oci.ValidateManifest(body, mediaType)
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w: %w", d, cache.ErrManifestInvalid, err)
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		size, ok := has(b.Digest)
		if !ok {
			return "", fmt.Errorf("manifest %s: %s: %w", d, b.Digest, cache.ErrManifestBlobUnknown)
		}
		if size != b.Size {
			return "", fmt.Errorf("manifest %s: %s is %d bytes, the manifest says %d: %w", d, b.Digest, size, b.Size, cache.ErrManifestInvalid)
		}
	}
	return d, nil
}
