package prefetch

import (
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
)

// The results a blob is counted under (wharf_prefetch_blobs_total).
const (
	resultFetched      = "fetched"
	resultHeld         = "held"
	resultDropped      = "dropped"
	resultFailed       = "failed"
	resultUpstreamDown = "upstream_down"
	resultRateLimited  = "rate_limited"
	resultNear         = "near_upstream"
	resultCacheFull    = "cache_full"
	resultTooLarge     = "too_large"
)

// lane is one upstream's queue; its workers take from it.
type lane struct {
	up    Upstream
	queue chan job

	mu      sync.Mutex
	closed  bool                       // Close drained the queue: nothing more is sent
	pending map[digest.Digest]struct{} // queued or being fetched; at most Queue+Concurrency
}

// put queues j unless its digest is queued or being fetched already, and
// returns the result to count now ("" when queued, or after Close). It
// never waits: a full queue drops j.
func (l *lane) put(j job, m *metrics.Metrics) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ""
	}
	if _, ok := l.pending[j.d]; ok {
		return resultHeld // another image, or another client's copy of this one
	}
	m.PrefetchQueue(1) // before the send: a worker may take it at once
	select {
	case l.queue <- j:
		l.pending[j.d] = struct{}{}
		return ""
	default:
		m.PrefetchQueue(-1)
		return resultDropped
	}
}

// done forgets d's place in the lane once its fetch has ended.
func (l *lane) done(d digest.Digest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, d)
}

// close drains the queue, its workers gone, and takes no more.
func (l *lane) close(m *metrics.Metrics) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for {
		select {
		case <-l.queue:
			m.PrefetchQueue(-1)
		default:
			clear(l.pending)
			return
		}
	}
}

// job is one blob to prefetch.
type job struct {
	repo cache.Repo
	d    digest.Digest
	size int64 // as the manifest gives it; -1 if it does not (schema 1)
}

// stopped says why nothing should be asked of l's upstream now (held
// back, or near: see Upstream.Near), as the result to count; "" when it
// may be asked.
func (p *Prefetcher) stopped(l *lane) string {
	if r := p.heldBack(l); r != "" {
		return r
	}
	if l.up.Near() {
		return resultNear
	}
	return ""
}

// heldBack says why l's upstream may not be asked now (it is down or
// limiting wharf, or the cache is full): a cause a failed fetch is
// counted under too.
func (p *Prefetcher) heldBack(l *lane) string {
	switch {
	case l.up.Down() != nil:
		return resultUpstreamDown
	case l.up.RateLimited():
		return resultRateLimited
	case p.opts.Store.Full():
		return resultCacheFull // prefetched blobs nobody reads would evict used ones
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
			result, size := p.fetch(l, j)
			l.done(j.d)
			if result != "" {
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
	if stop := p.stopped(l); stop != "" {
		return stop, j.size
	}
	if !p.opts.Store.Keeps(j.size) {
		return resultTooLarge, j.size // streamed to no one and dropped: not asked
	}
	p.opts.Metrics.PrefetchRunning(1)
	defer p.opts.Metrics.PrefetchRunning(-1)
	// Remembered before the fill can be joined: a client joins it while the
	// upstream has not answered yet, and Prefetch returns only once it has,
	// so remembering after would miss the clients prefetch was for. The
	// price: a client reading a blob held already, in the instant between
	// this and the Remove below, counts it used.
	p.fetched.Add(j.d, j.size)
	fw, err := p.opts.Store.Prefetch(p.ctx, j.repo, j.d)
	if err != nil {
		p.fetched.Remove(j.d)
		return p.failed(l, j, err), j.size
	}
	if fw == nil {
		p.fetched.Remove(j.d)
		return resultHeld, j.size // stored, or a fill running: nothing asked
	}
	defer fw.Close()
	size := j.size
	if size < 0 { // a schema 1 manifest's layer: the upstream's word
		if n, err := fw.Ready(p.ctx); err == nil && n >= 0 {
			size = n
			if _, unread := p.fetched.Peek(j.d); unread {
				p.fetched.Add(j.d, n) // for the used bytes
			}
		}
	}
	if err := fw.Wait(p.ctx); err != nil {
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
	result := p.heldBack(l) // not near: a failure is no less one for a registry that got faster
	if result == "" {
		result = resultFailed
	}
	p.log.WithError(err).WithFields(logrus.Fields{
		"upstream": j.repo.Upstream, "repo": j.repo.Path, "digest": j.d, "result": result,
	}).Debug("prefetch of a blob failed; its client's own request will ask again")
	return result
}
