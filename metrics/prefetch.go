package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// prefetchResults are the results a prefetched blob is counted under:
// fetched (stored by a prefetch fill), held (already stored, or being
// filled for a client: nothing asked), dropped (the queue was full),
// failed (the fill failed), upstream_down and rate_limited (not asked: the
// upstream was marked down, or limiting wharf), near_upstream (not asked:
// the upstream answers within upstream.farLatency), cache_full (not asked: the
// cache was past its high watermark), too_large (not asked: larger than
// the cache keeps).
func prefetchResults() []string {
	return []string{"fetched", "held", "dropped", "failed", "upstream_down", "rate_limited", "near_upstream", "cache_full", "too_large"}
}

// prefetchCollectors are package prefetch's collectors: blobs of an image fetched
// before its client asks for them.
type prefetchCollectors struct {
	PrefetchBlobs     *prometheus.CounterVec // result (prefetchResults)
	PrefetchBytes     *prometheus.CounterVec // result: the manifests' sizes of those blobs
	PrefetchUsed      prometheus.Counter     // prefetched blobs a client then read (once each)
	PrefetchUsedBytes prometheus.Counter     // their bytes
	PrefetchQueued    prometheus.Gauge       // blobs waiting in the queues, every upstream's
	PrefetchInFlight  prometheus.Gauge       // prefetch fills running now
}

func newPrefetch(f promauto.Factory) prefetchCollectors {
	p := prefetchCollectors{
		PrefetchBlobs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_prefetch_blobs_total", Help: "Blobs of fetched image manifests that prefetch took up, by result: fetched, held (stored or being filled already; not asked), dropped (queue full), failed, upstream_down, rate_limited, near_upstream, cache_full, too_large (not asked).",
		}, []string{"result"}),
		PrefetchBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: NamePrefetchBytes, Help: "Bytes of the blobs in wharf_prefetch_blobs_total, as their manifests give them, by result.",
		}, []string{"result"}),
		PrefetchUsed: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_prefetch_used_total", Help: "Blobs prefetch fetched that a client then read (each counted once).",
		}),
		PrefetchUsedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: NamePrefetchUsedBytes, Help: "Bytes of the blobs in wharf_prefetch_used_total.",
		}),
		PrefetchQueued: f.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_prefetch_queued", Help: "Blobs waiting for a prefetch worker, every upstream's.",
		}),
		PrefetchInFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_prefetch_in_flight", Help: "Blobs prefetch workers are fetching now.",
		}),
	}
	for _, r := range prefetchResults() { // every result from the start, at 0
		p.PrefetchBlobs.WithLabelValues(r)
		p.PrefetchBytes.WithLabelValues(r)
	}
	return p
}

// Prefetched counts a blob prefetch took up, by result (one of
// prefetchResults), and its size; a size below 0 (unknown) adds no bytes.
func (m *Metrics) Prefetched(result string, size int64) {
	if m == nil {
		return
	}
	m.PrefetchBlobs.WithLabelValues(result).Inc()
	if size > 0 {
		m.PrefetchBytes.WithLabelValues(result).Add(float64(size))
	}
}

// PrefetchUsedBlob counts a prefetched blob of size bytes read by a
// client for the first time.
func (m *Metrics) PrefetchUsedBlob(size int64) {
	if m == nil {
		return
	}
	m.PrefetchUsed.Inc()
	if size > 0 {
		m.PrefetchUsedBytes.Add(float64(size))
	}
}

// PrefetchQueue moves the queued gauge by delta (+1 queued, -1 taken).
func (m *Metrics) PrefetchQueue(delta int) {
	if m != nil {
		m.PrefetchQueued.Add(float64(delta))
	}
}

// PrefetchRunning moves the in-flight gauge by delta.
func (m *Metrics) PrefetchRunning(delta int) {
	if m != nil {
		m.PrefetchInFlight.Add(float64(delta))
	}
}
