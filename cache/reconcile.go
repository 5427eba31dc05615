package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
)

// Reconciliation runs at every start, after the temp area was swept. Files
// are the truth about content (only verified bytes are ever renamed into
// blobs/), and the index may lag them after a crash because its writes are
// not synced one by one. So:
//
//   - an index entry whose file is gone is dropped (fetched again on use);
//   - a file the index does not know, or whose size disagrees with it, is
//     hashed again: adopted when it matches its name, removed otherwise;
//     unknown content of a store that says it holds only verified content
//     (a shared store: every replica verified what it put) is adopted by
//     its size, unread.
//
// Only unknown or suspicious files are read; a clean store costs one
// directory walk and one index scan.

// Reconciled says what a reconciliation changed.
type Reconciled struct {
	Dropped, Adopted, Removed int
}

func (c *Cache) reconcile() (Reconciled, error) {
	var r Reconciled
	known := map[digest.Digest]index.BlobMeta{}
	if err := c.index.Blobs(func(d digest.Digest, m index.BlobMeta) error {
		known[d] = m
		return nil
	}); err != nil {
		return r, fmt.Errorf("reconcile: read index: %w", err)
	}
	ctx := context.Background() // before Open returns: nothing to cancel it yet
	// A store shared by replicas (cache/tier over a bucket) holds only
	// content verified before it was put, and may hold far more than this
	// replica ever saw: hashing it all again at every start would read the
	// whole bucket.
	vs, ok := c.store.(interface{ Verified() bool })
	verified := ok && vs.Verified()
	err := c.store.Walk(ctx, func(d digest.Digest, size int64) error {
		meta, ok := known[d]
		delete(known, d)
		if ok && meta.Size == size {
			return nil
		}
		if !ok && verified {
			// Verified before it was put, by whichever replica put it:
			// indexed by its size alone, without reading the bucket back.
			if err := c.index.PutBlob(d, index.BlobMeta{Size: size, Added: c.opts.Now()}); err != nil {
				return err
			}
			r.Adopted++
			return nil
		}
		if err := c.adopt(ctx, d, meta, ok); err != nil {
			c.log.WithError(err).WithField("digest", d).Warn("reconcile: removing a file that does not match its digest")
			c.opts.Metrics.StoreError("corrupt")
			c.index.ForgetBlob(d)
			c.store.Delete(ctx, d)
			r.Removed++
			return nil
		}
		r.Adopted++
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("reconcile: walk blobs: %w", err)
	}
	for d := range known {
		if err := c.index.ForgetBlob(d); err != nil {
			return r, err
		}
		r.Dropped++
	}
	return r, nil
}

// adopt re-hashes a file the index does not vouch for and indexes it if it
// matches its name. A manifest is recognised by its mediaType field.
func (c *Cache) adopt(ctx context.Context, d digest.Digest, old index.BlobMeta, known bool) error {
	f, err := c.store.Open(ctx, d)
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := oci.NewVerifier(d, -1)
	if err != nil {
		return err
	}
	head := &prefixBuffer{limit: oci.MaxManifestSize}
	n, err := io.Copy(io.MultiWriter(v, head), f)
	if err != nil {
		return fmt.Errorf("read %s: %w", d, err)
	}
	if err := v.Verify(); err != nil {
		return fmt.Errorf("%s: content does not hash to its name: %w", d, err)
	}
	meta := index.BlobMeta{Size: n, Added: c.opts.Now()}
	if known {
		meta = old
		meta.Size = n
	} else if !head.overflow {
		var probe struct{ MediaType string }
		if json.Unmarshal(head.buf, &probe) == nil && oci.KnownManifest(probe.MediaType) {
			meta.MediaType = probe.MediaType
			if p, err := oci.ParseManifest(head.buf); err == nil {
				meta.Refs = p.Refs()
			}
		}
	}
	return c.index.PutBlob(d, meta)
}

// prefixBuffer keeps the first limit bytes written to it.
type prefixBuffer struct {
	buf      []byte
	limit    int
	overflow bool
}

func (p *prefixBuffer) Write(b []byte) (int, error) {
	if len(p.buf)+len(b) > p.limit {
		p.overflow = true
		p.buf = nil
	}
	if !p.overflow {
		p.buf = append(p.buf, b...)
	}
	return len(b), nil
}
