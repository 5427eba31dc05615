package cache

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/fill"
)

// Prefetch starts the fill of d under repo's name, as a client's miss
// would, only if d is neither stored nor being filled; the choice is made
// under the fill table's lock, so of two callers (prefetch workers, or one
// and a client) one starts the fill and the other finds it. It returns the
// fill it started, once the upstream has answered, or nil when d was held
// already: then nothing was asked of anyone, the upstream included (no
// HEAD to vouch for repo, which a client's own read makes if it needs
// one). Work that can wait (package prefetch) takes this path rather than
// Blob; it counts no cache hit or miss, for no client asked.
func (c *Cache) Prefetch(ctx context.Context, repo Repo, d digest.Digest) (Prefetched, error) {
	if _, ok := c.HasContent(d); ok {
		return nil, nil
	}
	o, err := c.origin(ctx, repo)
	if err != nil {
		return nil, err
	}
	fw, started, err := c.startFill(o, repo, d)
	switch {
	case errors.Is(err, fill.ErrCommitted):
		return nil, nil
	case err != nil:
		return nil, err
	case !started:
		fw.Close() // a fill running already: its starter reads it
		return nil, nil
	}
	if _, err := fw.Ready(ctx); err != nil {
		fw.Close()
		return nil, blobError(repo, d, err)
	}
	return fw, nil // repo vouched for as the upstream answered, linked when the bytes commit (startFill)
}

// Prefetched is a fill Prefetch started (a *fill.Follower): its caller
// waits for it to end, and closes it.
type Prefetched interface {
	// Ready returns the blob's size as the upstream announced it (-1 if
	// it did not).
	Ready(ctx context.Context) (int64, error)
	// Wait returns how the fill ended.
	Wait(ctx context.Context) error
	Close() error
}

// Keeps reports whether a blob of size bytes (as a manifest gives it; -1
// unknown) would be kept: one larger than the cache is streamed to the
// clients reading it and dropped, so fetching it with none reading is
// pure cost.
func (c *Cache) Keeps(size int64) bool { return c.opts.MaxSize <= 0 || size <= c.opts.MaxSize }

// Full reports whether the local cache is past its high watermark, where
// eviction is running or about to: content fetched now would push out
// what clients used. Work that can wait (prefetch) holds off. A cache
// without a size cap, or evicting the shared tier, is never full here.
func (c *Cache) Full() bool {
	return !c.opts.SharedEviction && c.opts.MaxSize > 0 && c.size.Load() > c.highWater()
}
