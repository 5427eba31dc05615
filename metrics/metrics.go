package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics holds wharf's collectors. Build it with New.
type Metrics struct {
	// HTTP front end.
	Requests        *prometheus.CounterVec   // route, method, status
	RequestDuration *prometheus.HistogramVec // route, method

	// Cache outcomes.
	CacheHits   *prometheus.CounterVec // kind: manifest|blob|tag
	CacheMisses *prometheus.CounterVec // kind
	ServedBytes *prometheus.CounterVec // source: cache|upstream
	StaleServed *prometheus.CounterVec // kind: tag|tags_list — served from cache while the upstream failed
	FillsActive prometheus.Gauge
	Fills       *prometheus.CounterVec // result: ok|digest_mismatch|error
	CacheSize   prometheus.Gauge       // bytes of verified content on disk
	CacheBlobs  prometheus.Gauge       // number of verified blobs (manifests included)

	// Store lifecycle.
	Evictions    prometheus.Counter     // items evicted by the LRU
	EvictedBytes prometheus.Counter     // bytes evicted by the LRU
	Capacity     prometheus.Gauge       // the configured cap in bytes (0: unlimited)
	StoreErrors  *prometheus.CounterVec // kind: enospc|write|read|index|corrupt|too_large

	// Write path.
	WriteThroughPending  prometheus.Gauge       // manifests and deletes waiting to go upstream
	WriteThroughPushed   prometheus.Counter     // manifests pushed upstream
	WriteThroughDeleted  prometheus.Counter     // deletes passed on upstream
	WriteThroughFailures *prometheus.CounterVec // reason
	UploadsActive        prometheus.Gauge       // blob upload sessions open
	LimitHits            *prometheus.CounterVec // limit: login|uploads_global|uploads_client|body_idle|chunk_buffers|chunk_fill_rate

	// Upstream traffic.
	UpstreamRequests *prometheus.CounterVec   // upstream, kind, status (HTTP code or "error")
	UpstreamDuration *prometheus.HistogramVec // upstream, kind
	UpstreamBytes    *prometheus.CounterVec   // upstream
	UpstreamRetries  *prometheus.CounterVec   // upstream, reason: 429|5xx|network|resume
	RateLimitLimit   *prometheus.GaugeVec     // upstream — Docker Hub's ratelimit-limit
	RateLimitRemain  *prometheus.GaugeVec     // upstream — Docker Hub's ratelimit-remaining
	UpstreamFailures *prometheus.CounterVec   // upstream, reason
	UpstreamUp       *prometheus.GaugeVec     // upstream: 1 up, 0 marked down (upstream/transport/health.go)
	// Connections opened to an upstream's hosts, its registry's least time
	// to first byte (conns.go).
	UpstreamConnections *prometheus.CounterVec // upstream
	upstreamFirstByte   *firstByte             // wharf_upstream_first_byte_seconds, read at each scrape

	prefetchCollectors // an image's blobs fetched before its client asks (prefetch.go)

	// Tiered store (cache/tier): the local hot tier in front of the shared one.
	TierLocalHits      prometheus.Counter     // opens answered by the local tier
	TierSharedReads    prometheus.Counter     // opens answered by the shared tier
	TierPromotions     *prometheus.CounterVec // result: ok|corrupt|error — copies from shared to local
	TierPromotedBytes  prometheus.Counter     // bytes copied into the local tier by promotions
	TierLocalEvictions prometheus.Counter     // local copies removed to stay under the local cap
	TierLocalSize      prometheus.Gauge       // bytes held by the local tier

	// The S3-compatible store (cache/s3): every request it answered, or
	// did not.
	S3Requests *prometheus.CounterVec   // by op (the HTTP method) and result (2xx, 3xx, 4xx, 5xx, error)
	SharedSize prometheus.Gauge         // bytes in the shared store, as its evicting replica last walked it
	S3Latency  *prometheus.HistogramVec // seconds to the answer's headers, by op

	// Cluster (package peer): replicas asking each other before the upstream.
	PeerRequests      *prometheus.CounterVec // result: ok|failed_over|relayed_error|skipped|announce_failed
	PeerReceivedBytes prometheus.Counter     // blob bytes received from peers
	PeerServedTotal   *prometheus.CounterVec // kind: blob|manifest|tags — requests served to peers
	ClusterChanges    prometheus.Counter     // changes of the live members (each moves some keys' owners)
	ClusterMembersUp  prometheus.Gauge       // members up, self included
	// Shared eviction's handshakes with pushes and its view of the other
	// replicas' readers (cache/sharedevicting.go, cache/sharedaccess.go).
	ClusterEvictHandshakes *prometheus.CounterVec // result: kept|refused|stale
	ClusterEvictSpared     *prometheus.CounterVec // reason: pinned|held|linked|slow
	// Shared records (cache, with storage.s3): the small objects replicas share.
	RecordsErrors *prometheus.CounterVec // op: get|put|delete|list|dropped
	// Segmented fetch of big blobs (segment.go).
	Segments Segments
}

// New registers wharf's collectors on reg.
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	firstByte := newFirstByte()
	if reg != nil {
		reg.MustRegister(firstByte)
	}
	return &Metrics{
		prefetchCollectors: newPrefetch(f),
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_requests_total", Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "status"}),
		RequestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wharf_http_request_duration_seconds", Help: "Time to serve an HTTP request, by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route", "method"}),
		CacheHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameCacheHits, Help: "Requests answered from the cache, by kind.",
		}, []string{"kind"}),
		CacheMisses: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameCacheMisses, Help: "Requests that needed the upstream, by kind.",
		}, []string{"kind"}),
		ServedBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameServedBytes, Help: "Body bytes sent to clients, by source (cache or upstream).",
		}, []string{"source"}),
		StaleServed: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameStaleServed, Help: "Answers served from the cache because the upstream failed, by kind.",
		}, []string{"kind"}),
		FillsActive: f.NewGauge(prometheus.GaugeOpts{
			Name: NameFillsInFlight, Help: "Blob fills from the upstream in progress.",
		}),
		Fills: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_fills_total", Help: "Finished blob fills, by result.",
		}, []string{"result"}),
		CacheSize: f.NewGauge(prometheus.GaugeOpts{
			Name: NameCacheSize, Help: "Bytes of verified content in the cache.",
		}),
		CacheBlobs: f.NewGauge(prometheus.GaugeOpts{
			Name: NameCacheBlobs, Help: "Verified blobs and manifests in the cache.",
		}),
		Evictions: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_cache_evictions_total", Help: "Blobs and manifests evicted to stay under the size cap.",
		}),
		EvictedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: NameEvictedBytes, Help: "Bytes evicted to stay under the size cap.",
		}),
		Capacity: f.NewGauge(prometheus.GaugeOpts{
			Name: NameCapacity, Help: "The cache's size cap in bytes; 0 is unlimited.",
		}),
		StoreErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_store_errors_total", Help: "Errors of the local store, by kind.",
		}, []string{"kind"}),
		WriteThroughPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_writethrough_pending", Help: "Pushed manifests and deletes waiting to be written through to the upstream.",
		}),
		WriteThroughPushed: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_writethrough_pushed_total", Help: "Manifests written through to the upstream.",
		}),
		WriteThroughDeleted: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_writethrough_deleted_total", Help: "Deletes of pushed tags, manifests and blobs passed on to the upstream.",
		}),
		WriteThroughFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_writethrough_failures_total", Help: "Failed write-through attempts, by reason.",
		}, []string{"reason"}),
		UploadsActive: f.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_uploads_in_progress", Help: "Blob upload sessions open.",
		}),
		LimitHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_limit_hits_total", Help: "Requests refused or cut short by a per-client limit, by limit.",
		}, []string{"limit"}),
		UpstreamRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameUpstreamRequests, Help: "Requests sent to upstream registries, by upstream, kind and status.",
		}, []string{"upstream", "kind", "status"}),
		UpstreamDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wharf_upstream_request_duration_seconds", Help: "Time to the upstream's response headers, by upstream and kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"upstream", "kind"}),
		UpstreamBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameUpstreamBytes, Help: "Body bytes received from upstream registries.",
		}, []string{"upstream"}),
		UpstreamRetries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_upstream_retries_total", Help: "Upstream requests retried, by upstream and reason.",
		}, []string{"upstream", "reason"}),
		RateLimitLimit: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameRateLimitLimit, Help: "Pull budget the upstream announced (Docker Hub ratelimit-limit).",
		}, []string{"upstream"}),
		RateLimitRemain: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameRateLimitRemaining, Help: "Pulls left in the upstream's window (Docker Hub ratelimit-remaining).",
		}, []string{"upstream"}),
		UpstreamFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameUpstreamFailures, Help: "Upstream operations that failed after retries, by upstream and reason.",
		}, []string{"upstream", "reason"}),
		UpstreamConnections: newUpstreamConnections(f),
		upstreamFirstByte:   firstByte,
		UpstreamUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_upstream_up", Help: "1 while the upstream is up, 0 while wharf has marked it down and only probes it.",
		}, []string{"upstream"}),
		TierLocalHits: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_tier_local_hits_total", Help: "Content opened from the local tier.",
		}),
		TierSharedReads: f.NewCounter(prometheus.CounterOpts{
			Name: NameTierSharedReads, Help: "Content opened from the shared tier, missing locally.",
		}),
		TierPromotions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_tier_promotions_total", Help: "Background copies from the shared tier into the local one, by result.",
		}, []string{"result"}),
		TierPromotedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_tier_promoted_bytes_total", Help: "Bytes copied from the shared tier into the local one.",
		}),
		TierLocalEvictions: f.NewCounter(prometheus.CounterOpts{
			Name: "wharf_tier_local_evictions_total", Help: "Local copies removed to stay under the local tier's cap; the shared copy stays.",
		}),
		TierLocalSize: f.NewGauge(prometheus.GaugeOpts{
			Name: NameTierLocalBytes, Help: "Bytes of content held by the local tier.",
		}),
		SharedSize: f.NewGauge(prometheus.GaugeOpts{
			Name: NameSharedSize, Help: "Bytes of content in the shared store (storage.s3), as this replica last walked it while it led the cluster's eviction; 0 on the others.",
		}),
		S3Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameS3Requests, Help: "Requests to the S3-compatible store, by HTTP method and result (2xx, 3xx, 4xx, 5xx, error: no answer).",
		}, []string{"op", "result"}),
		S3Latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameS3Latency, Help: "Time from a request to the S3-compatible store to its answer's headers, by HTTP method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		PeerRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: NamePeerRequests, Help: "Requests this replica made to the owning peer, by result: ok, failed_over (the peer failed; the next replica was asked), relayed_error (the owner relayed the upstream's error), skipped (the peer lacks the upstream; the next replica was asked), announce_failed (a push's announcement did not reach the peer).",
		}, []string{"result"}),
		PeerReceivedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: NamePeerReceivedBytes, Help: "Blob bytes received from peers.",
		}),
		PeerServedTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: NamePeerServed, Help: "Requests served to peers on the peer listener, by kind.",
		}, []string{"kind"}),
		ClusterChanges: f.NewCounter(prometheus.CounterOpts{
			Name: NameClusterChanges, Help: "Changes of the cluster's live members; each moves the owners of the keys the member ranked first.",
		}),
		ClusterMembersUp: f.NewGauge(prometheus.GaugeOpts{
			Name: NameClusterMembersUp, Help: "Cluster members this replica sees up, itself included.",
		}),
		ClusterEvictHandshakes: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameClusterEvictHandshakes, Help: "Pushes that linked content the leader of eviction was deleting, by result: kept (the leader saw the push's link and kept the content), refused (the content was gone: the push failed, retryable, and the client uploads again), stale (the leader's record outlived its bound and was taken for a dead leader's).",
		}, []string{"result"}),
		ClusterEvictSpared: f.NewCounterVec(prometheus.CounterOpts{
			Name: NameClusterEvictSpared, Help: "Content the leader of eviction chose and then kept, by reason: pinned (a pinned link in the bucket), held (a reader on some replica holds it open), linked (a delete's removal found a link left in the bucket), slow (the delete could not start within half the evicting record's bound).",
		}, []string{"reason"}),
		RecordsErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_records_errors_total", Help: "Failed reads and writes of the records replicas share in the bucket, by op; dropped: background writes dropped with the queue full.",
		}, []string{"op"}),
		Segments: newSegments(f),
	}
}

// ObserveRequest records one HTTP request.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.Requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.RequestDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Hit counts a cache hit of kind.
func (m *Metrics) Hit(kind string) {
	if m != nil {
		m.CacheHits.WithLabelValues(kind).Inc()
	}
}

// Miss counts a cache miss of kind.
func (m *Metrics) Miss(kind string) {
	if m != nil {
		m.CacheMisses.WithLabelValues(kind).Inc()
	}
}

// Stale counts an answer served from the cache while the upstream failed.
func (m *Metrics) Stale(kind string) {
	if m != nil {
		m.StaleServed.WithLabelValues(kind).Inc()
	}
}

// Served adds n body bytes sent to a client from source ("cache" or "upstream").
func (m *Metrics) Served(source string, n int64) {
	if m != nil && n > 0 {
		m.ServedBytes.WithLabelValues(source).Add(float64(n))
	}
}

// UpstreamRequest records one upstream round trip; status 0 means no response.
func (m *Metrics) UpstreamRequest(upstream, kind string, status int, d time.Duration) {
	if m == nil {
		return
	}
	s := "error"
	if status > 0 {
		s = strconv.Itoa(status)
	}
	m.UpstreamRequests.WithLabelValues(upstream, kind, s).Inc()
	m.UpstreamDuration.WithLabelValues(upstream, kind).Observe(d.Seconds())
}

// UpstreamRetry counts a retried upstream request.
func (m *Metrics) UpstreamRetry(upstream, reason string) {
	if m != nil {
		m.UpstreamRetries.WithLabelValues(upstream, reason).Inc()
	}
}

// UpstreamFailure counts an upstream operation that failed for good.
func (m *Metrics) UpstreamFailure(upstream, reason string) {
	if m != nil {
		m.UpstreamFailures.WithLabelValues(upstream, reason).Inc()
	}
}

// SetUpstreamUp records whether an upstream is up (1) or marked down (0).
func (m *Metrics) SetUpstreamUp(upstream string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.UpstreamUp.WithLabelValues(upstream).Set(v)
}

// UpstreamRead adds n body bytes received from upstream.
func (m *Metrics) UpstreamRead(upstream string, n int64) {
	if m != nil && n > 0 {
		m.UpstreamBytes.WithLabelValues(upstream).Add(float64(n))
	}
}

// RateLimit records the pull budget an upstream announced.
func (m *Metrics) RateLimit(upstream string, limit, remaining float64) {
	if m == nil {
		return
	}
	m.RateLimitLimit.WithLabelValues(upstream).Set(limit)
	m.RateLimitRemain.WithLabelValues(upstream).Set(remaining)
}

// FillStarted and FillDone track fills in flight and their results.
func (m *Metrics) FillStarted() {
	if m != nil {
		m.FillsActive.Inc()
	}
}

// FillDone ends a fill with result "ok", "digest_mismatch" or "error".
func (m *Metrics) FillDone(result string) {
	if m != nil {
		m.FillsActive.Dec()
		m.Fills.WithLabelValues(result).Inc()
	}
}

// SetCacheUsage publishes the store's size.
func (m *Metrics) SetCacheUsage(bytes, blobs int64) {
	if m != nil {
		m.CacheSize.Set(float64(bytes))
		m.CacheBlobs.Set(float64(blobs))
	}
}

// Evicted counts one evicted item of n bytes.
func (m *Metrics) Evicted(n int64) {
	if m != nil {
		m.Evictions.Inc()
		m.EvictedBytes.Add(float64(n))
	}
}

// StoreError counts an error of the local store of kind.
func (m *Metrics) StoreError(kind string) {
	if m != nil {
		m.StoreErrors.WithLabelValues(kind).Inc()
	}
}

// SetCapacity publishes the size cap.
func (m *Metrics) SetCapacity(bytes int64) {
	if m != nil {
		m.Capacity.Set(float64(bytes))
	}
}
