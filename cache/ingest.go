package cache

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
)

// Ingest makes f, a staged file whose size bytes the caller hashed to d,
// the stored content d: Store.Put and then its index record, pinned for
// pushes and imports (which the LRU must never evict). It is the one door
// for verified content that arrives whole (upload sessions, wharf
// import); fills, which followers read while they grow, commit through
// fill.Group. On failure f is left to the caller.
func (c *Cache) Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error {
	if err := c.store.Put(ctx, f, d, size); err != nil {
		c.opts.Metrics.StoreError("write")
		return fmt.Errorf("store %s: %w", d, err)
	}
	return c.recordContent(d, size, "", nil, pinned)
}

// pin marks stored content as pushed, keeping what the index knows of it.
func (c *Cache) pin(d digest.Digest, size int64) error {
	meta, err := c.index.Blob(d)
	if err != nil {
		return c.recordContent(d, size, "", nil, true)
	}
	if meta.Pinned {
		return nil
	}
	meta.Pinned = true
	return c.index.PutBlob(d, meta)
}
