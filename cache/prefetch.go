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
func (c *Cache) Prefetch(ctx context.Context, repo Repo, d digest.Digest) (*fill.Follower, error) {
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
	return fw, nil // repo linked as the upstream answered (startFill)
}

// Full reports whether the local cache is past its high watermark, where
// eviction is running or about to: content fetched now would push out
// what clients used. Work that can wait (prefetch) holds off. A cache
// without a size cap, or evicting the shared tier, is never full here.
func (c *Cache) Full() bool {
	return !c.opts.SharedEviction && c.opts.MaxSize > 0 && c.size.Load() > c.highWater()
}
