package archive

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// dryRun is the first pass of an import. It walks the archives exactly as
// the import will, reading and checking everything the import would store
// (each blob's digest and size, each manifest as checkManifest judges it,
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

// blob checks that r yields dg (size bytes, unless size < 0), as the
// storing pass will, without keeping the bytes.
func (d *dryRun) blob(ctx context.Context, dg digest.Digest, size int64, r io.Reader) error {
	n, err := copyVerified(ctx, io.Discard, dg, size, r)
	if err != nil {
		return err
	}
	d.seen[dg] = n
	return nil
}

// manifest checks body as the storing pass will (checkManifest), with the
// blobs the archives hold counted as stored.
func (d *dryRun) manifest(st ImportStore, tag, mediaType string, want digest.Digest, body []byte) error {
	dg, err := checkManifest(tag, mediaType, want, body, func(b digest.Digest) (int64, bool) { return d.has(st, b) })
	if err != nil {
		return err
	}
	d.seen[dg] = int64(len(body))
	return nil
}
