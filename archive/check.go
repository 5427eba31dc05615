package archive

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// dryRun is the first pass of an import. It walks the archives exactly as
// the import will, reading and checking everything the import would store
// (each blob's digest and size, each manifest as ImportManifest judges it,
// every name and path), and writes nothing. Only when every archive passes
// does the second pass store them, checking again as the bytes go in. So
// an archive refused for anything it contains (a tampered blob, a missing
// file, a path that leaves it) leaves the store exactly as it was, with
// nothing half-imported, at the price of reading the archives twice.
type dryRun struct {
	// seen is the content the archives hold, verified, and its size.
	seen map[digest.Digest]int64
}

func newDryRun() *dryRun { return &dryRun{seen: map[digest.Digest]int64{}} }

// has reports content the store holds or the archives were seen to hold.
func (d *dryRun) has(st ImportStore, dg digest.Digest) (int64, bool) {
	if n, ok := d.seen[dg]; ok {
		return n, true
	}
	return st.HasContent(dg)
}

// blob checks that r yields dg (size bytes, unless size < 0), as
// ImportBlob would, without keeping the bytes.
func (d *dryRun) blob(dg digest.Digest, size int64, r io.Reader) error {
	if err := dg.Validate(); err != nil {
		return fmt.Errorf("%q: %w: %w", dg, cache.ErrDigestInvalid, err)
	}
	v, err := oci.NewVerifyingReader(r, dg, size)
	if err != nil {
		return fmt.Errorf("%q: %w: %w", dg, cache.ErrDigestInvalid, err)
	}
	n, err := io.Copy(io.Discard, v)
	if err != nil {
		return fmt.Errorf("blob %s: %w", dg, oci.WrapMismatch(err, cache.ErrDigestInvalid, cache.ErrSizeInvalid))
	}
	d.seen[dg] = n
	return nil
}

// manifest checks body as ImportManifest would: its size, its digest
// (want, when set), that it is a valid manifest of mediaType, and that
// every blob it references is stored or in the archives, at its size.
func (d *dryRun) manifest(st ImportStore, mediaType string, want digest.Digest, body []byte) error {
	if len(body) > oci.MaxManifestSize {
		return fmt.Errorf("manifest over %d bytes: %w", oci.MaxManifestSize, cache.ErrTooLarge)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return fmt.Errorf("%q: %w: %w", want, cache.ErrDigestInvalid, err)
		}
	}
	dg, err := oci.ManifestDigest(body, want)
	if err != nil {
		return fmt.Errorf("manifest: %w", oci.WrapMismatch(err, cache.ErrDigestInvalid, cache.ErrSizeInvalid))
	}
	p, err := oci.ValidateManifest(body, mediaType)
	if err != nil {
		return fmt.Errorf("manifest %s: %w: %w", dg, cache.ErrManifestInvalid, err)
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		size, ok := d.has(st, b.Digest)
		if !ok {
			return fmt.Errorf("manifest %s: %s: %w", dg, b.Digest, cache.ErrManifestBlobUnknown)
		}
		if size != b.Size {
			return fmt.Errorf("manifest %s: %s is %d bytes, the manifest says %d: %w", dg, b.Digest, size, b.Size, cache.ErrManifestInvalid)
		}
	}
	d.seen[dg] = int64(len(body))
	return nil
}
