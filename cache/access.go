package cache

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
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
	stats   map[string]index.RepoStats
}

func newAccessLog(granularity time.Duration) *accessLog {
	recent, _ := lru.New[digest.Digest, time.Time](65536)
	return &accessLog{granularity: granularity, recent: recent, pending: map[digest.Digest]time.Time{}, stats: map[string]index.RepoStats{}}
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

// pull counts a manifest request for repo, and whether the cache answered.
func (a *accessLog) pull(repo string, hit bool) {
	a.mu.Lock()
	s := a.stats[repo]
	s.Pulls++
	if hit {
		s.Hits++
	}
	a.stats[repo] = s
	a.mu.Unlock()
}

// take hands over the pending batch.
func (a *accessLog) take() (map[digest.Digest]time.Time, map[string]index.RepoStats) {
	a.mu.Lock()
	defer a.mu.Unlock()
	times, stats := a.pending, a.stats
	a.pending, a.stats = map[digest.Digest]time.Time{}, map[string]index.RepoStats{}
	return times, stats
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
	times, stats := c.access.take()
	if len(times) > 0 {
		if err := c.index.PutAccess(times); err != nil {
			c.opts.Metrics.StoreError("index")
			c.log.WithError(err).Warn("writing access times")
		}
	}
	if len(stats) > 0 {
		if err := c.index.AddStats(stats); err != nil {
			c.opts.Metrics.StoreError("index")
			c.log.WithError(err).Warn("writing repository stats")
		}
	}
}
