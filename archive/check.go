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

// manifest checks body as ImportManifest would (cache.CheckManifest),
// with the blobs the archives hold counted as stored.
func (d *dryRun) manifest(st ImportStore, tag, mediaType string, want digest.Digest, body []byte) error {
	dg, err := cache.CheckManifest(tag, mediaType, want, body, func(b digest.Digest) (int64, bool) { return d.has(st, b) })
	if err != nil {
		return err
	}
	d.seen[dg] = int64(len(body))
	return nil
}
