package cache

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
)

// accessLog remembers when content was last used, for LRU eviction,
// without a disk write on the request path: a hit only updates memory, and
// the log is written to the index in batches. An item used again within
// granularity of its last recorded use is not recorded again, so a hot
// item costs one map lookup per hit.
type accessLog struct {
	granularity time.Duration
	recent      *lru.Cache[digest.Digest, time.Time] // last time queued, for the hot set

	mu      sync.Mutex
	pending map[digest.Digest]time.Time
}

func newAccessLog(granularity time.Duration) *accessLog {
	recent, _ := lru.New[digest.Digest, time.Time](65536)
	return &accessLog{granularity: granularity, recent: recent, pending: map[digest.Digest]time.Time{}}
}

// touch notes that d was used at now.
func (a *accessLog) touch(d digest.Digest, now time.Time) {
	if last, ok := a.recent.Get(d); ok && now.Sub(last) < a.granularity {
		return
	}
	a.recent.Add(d, now)
	a.mu.Lock()
	a.pending[d] = now
	a.mu.Unlock()
}

// take hands over the pending batch.
func (a *accessLog) take() map[digest.Digest]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	batch := a.pending
	a.pending = map[digest.Digest]time.Time{}
	return batch
}

// forget drops d (evicted) from the hot set and the pending batch.
func (a *accessLog) forget(d digest.Digest) {
	a.recent.Remove(d)
	a.mu.Lock()
	delete(a.pending, d)
	a.mu.Unlock()
}

// flushAccess writes the pending batch to the index.
func (c *Cache) flushAccess() {
	batch := c.access.take()
	if batch == nil {
		return
	}
	if err := c.index.PutAccess(batch); err != nil {
		c.opts.Metrics.StoreError("index")
		c.log.WithError(err).Warn("writing access times")
	}
}
