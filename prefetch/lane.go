package prefetch

import (
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
)

// The results a blob is counted under (wharf_prefetch_blobs_total).
const (
	resultFetched      = "fetched"
	resultHeld         = "held"
	resultDropped      = "dropped"
	resultFailed       = "failed"
	resultUpstreamDown = "upstream_down"
	resultRateLimited  = "rate_limited"
)

// lane is one upstream's queue; its workers take from it.
type lane struct {
	up    Upstream
	queue chan job
}

// job is one blob to prefetch.
type job struct {
	repo cache.Repo
	d    digest.Digest
	size int64 // as the manifest gives it; -1 if it does not (schema 1)
}

// stopped says why nothing should be asked of the lane's upstream now,
// as the result to count; "" when it may be asked.
func (l *lane) stopped() string {
	switch {
	case l.up.Down() != nil:
		return resultUpstreamDown
	case l.up.RateLimited():
		return resultRateLimited
	}
	return ""
}

// work is one of a lane's workers: it fetches a blob at a time until
// Close.
func (p *Prefetcher) work(l *lane) {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case j := <-l.queue:
			p.opts.Metrics.PrefetchQueue(-1)
			if result, size := p.fetch(l, j); result != "" {
				p.opts.Metrics.Prefetched(result, size)
			}
		}
	}
}

// fetch brings j's blob into the store unless it is there or on its way,
// and holds the worker until the fill has ended. It returns the result to
// count and the blob's size; "" when Close cut it short (the fill goes on
// under the cache).
func (p *Prefetcher) fetch(l *lane, j job) (string, int64) {
	if stop := l.stopped(); stop != "" {
		return stop, j.size
	}
	if _, ok := p.opts.Store.HasContent(j.d); ok || p.opts.Store.Filling(j.d) {
		return resultHeld, j.size
	}
	p.opts.Metrics.PrefetchRunning(1)
	defer p.opts.Metrics.PrefetchRunning(-1)
	// Remembered before the fill starts: a client joining it reads what
	// prefetch fetched (and it cannot join earlier).
	p.fetched.Add(j.d, j.size)
	b, err := p.opts.Store.Blob(p.ctx, j.repo, j.d)
	if err != nil {
		p.fetched.Remove(j.d)
		return p.failed(l, j, err), j.size
	}
	defer b.Close()
	if b.File != nil {
		p.fetched.Remove(j.d)
		return resultHeld, j.size // stored since the look above
	}
	size := j.size
	if size < 0 {
		size = b.Size // a schema 1 manifest's layer: the upstream's word (the used count has none)
	}
	if err := b.Fill.Wait(p.ctx); err != nil {
		p.fetched.Remove(j.d)
		return p.failed(l, j, err), size
	}
	if _, ok := p.opts.Store.HasContent(j.d); !ok {
		// Streamed but not kept: larger than the cache, or the disk full.
		p.fetched.Remove(j.d)
		return resultFailed, size
	}
	return resultFetched, size
}

// failed classes a failed fetch: the upstream marked down or limiting
// meanwhile is counted as such; Close is not counted at all.
func (p *Prefetcher) failed(l *lane, j job, err error) string {
	if p.ctx.Err() != nil {
		return ""
	}
	result := l.stopped()
	if result == "" {
		result = resultFailed
	}
	p.log.WithError(err).WithFields(logrus.Fields{
		"upstream": j.repo.Upstream, "repo": j.repo.Path, "digest": j.d, "result": result,
	}).Debug("prefetch of a blob failed; its client's own request will ask again")
	return result
}
