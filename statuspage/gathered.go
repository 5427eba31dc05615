package statuspage

import (
	"sort"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wharf-mirror/wharf/metrics"
)

// gathered is what the status page reads from the metrics registry. Reading
// the registry (rather than keeping counters of its own) means the page and
// /metrics can never disagree, and the page needs no hooks into the layers that
// count.
type gathered struct {
	hits, misses   map[string]float64 // by kind
	served         map[string]float64 // by source: cache | upstream
	stale          map[string]float64 // by kind
	upstreamBytes  map[string]float64 // by upstream
	upRequests     map[string]float64 // by upstream, every attempt
	upBadResponses map[string]float64 // by upstream: no response, 429 or 5xx
	upFailures     map[string]float64 // by upstream: operations failed after retries
	limit, remain  map[string]float64 // by upstream, present only once announced
	capacity       float64            // 0: unlimited
	size, blobs    float64
	evictedBytes   float64
	fillsInFlight  float64

	// A cluster's replica (package peer) and a store on S3 (cache/s3,
	// cache/tier): present only when those run.
	hasCluster, hasS3   bool
	membersUp, changes  float64
	peerReq             map[string]float64 // by result: ok, failed_over, relayed_error
	peerBytes           float64
	peerServed          float64
	s3Requests, s3Bad   float64 // every request; those with no answer or a 5xx
	s3Seconds, s3Timed  float64 // the latency histogram's sum and count
	localBytes, sharedR float64 // the local tier's copies; opens the bucket answered

	firstByte              map[string]float64 // seconds, by upstream; present only while timed
	prefetched, prefetchRd float64            // bytes prefetch fetched; of those, bytes clients read
}

func readGathered(fams []*dto.MetricFamily) gathered {
	g := gathered{
		hits: map[string]float64{}, misses: map[string]float64{}, served: map[string]float64{}, stale: map[string]float64{},
		upstreamBytes: map[string]float64{}, upRequests: map[string]float64{},
		upBadResponses: map[string]float64{}, upFailures: map[string]float64{},
		limit: map[string]float64{}, remain: map[string]float64{}, peerReq: map[string]float64{},
		firstByte: map[string]float64{},
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := value(m)
			switch f.GetName() {
			case metrics.NameCacheHits:
				g.hits[label(m, "kind")] += v
			case metrics.NameCacheMisses:
				g.misses[label(m, "kind")] += v
			case metrics.NameStaleServed:
				g.stale[label(m, "kind")] += v
			case metrics.NameServedBytes:
				g.served[label(m, "source")] += v
			case metrics.NameUpstreamBytes:
				g.upstreamBytes[label(m, "upstream")] += v
			case metrics.NameUpstreamRequests:
				up := label(m, "upstream")
				g.upRequests[up] += v
				if badStatus(label(m, "status")) {
					g.upBadResponses[up] += v
				}
			case metrics.NameUpstreamFailures:
				g.upFailures[label(m, "upstream")] += v
			case metrics.NameRateLimitLimit:
				g.limit[label(m, "upstream")] = v
			case metrics.NameRateLimitRemaining:
				g.remain[label(m, "upstream")] = v
			case metrics.NameUpstreamFirstByte:
				g.firstByte[label(m, "upstream")] = v
			case metrics.NamePrefetchBytes:
				if label(m, "result") == "fetched" {
					g.prefetched += v
				}
			case metrics.NamePrefetchUsedBytes:
				g.prefetchRd += v
			case metrics.NameCapacity:
				g.capacity = v
			case metrics.NameCacheSize:
				g.size = v
			case metrics.NameCacheBlobs:
				g.blobs = v
			case metrics.NameEvictedBytes:
				g.evictedBytes = v
			case metrics.NameFillsInFlight:
				g.fillsInFlight = v
			case metrics.NameClusterMembersUp:
				g.hasCluster, g.membersUp = v > 0, v // a replica counts itself: 0 is no cluster
			case metrics.NameClusterChanges:
				g.changes = v
			case metrics.NamePeerRequests:
				g.peerReq[label(m, "result")] += v
			case metrics.NamePeerReceivedBytes:
				g.peerBytes = v
			case metrics.NamePeerServed:
				g.peerServed += v
			case metrics.NameS3Requests:
				g.hasS3 = true
				g.s3Requests += v
				if r := label(m, "result"); r == "error" || r == "5xx" {
					g.s3Bad += v
				}
			case metrics.NameS3Latency:
				g.s3Seconds += m.GetHistogram().GetSampleSum()
				g.s3Timed += float64(m.GetHistogram().GetSampleCount())
			case metrics.NameTierLocalBytes:
				g.localBytes = v
			case metrics.NameTierSharedReads:
				g.sharedR = v
			}
		}
	}
	return g
}

// upstreams lists every upstream the metrics name, plus the configured
// ones (always) so each shows before its first request.
func (g gathered) upstreams(always []string) []string {
	seen := map[string]bool{}
	for _, name := range always {
		seen[name] = true
	}
	for _, m := range []map[string]float64{g.upRequests, g.upFailures, g.limit, g.upstreamBytes} {
		for k := range m {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// badStatus tells an upstream answer that says the upstream is unwell
// (unreachable, rate limited, failing) from one about the request (401,
// 404), which says nothing about its health.
func badStatus(s string) bool {
	if s == "error" {
		return true
	}
	code, err := strconv.Atoi(s)
	return err == nil && (code == 429 || code >= 500)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// healthWindow turns the upstream counters, which only grow, into "recent"
// numbers: it keeps snapshots taken when the page is viewed (at most one per
// step, about span's worth) and compares the current totals with the
// oldest one. Until a snapshot is at least step old, the totals since start
// are used. Memory is bounded by span/step+2 snapshots.
type healthWindow struct {
	span, step time.Duration

	mu    sync.Mutex
	snaps []healthSnap
}

type healthSnap struct {
	at            time.Time
	req, bad, ops map[string]float64 // by upstream, as in gathered
}

// since records cur and returns the snapshot to subtract from it; ok is false
// when there is none old enough (use the totals).
func (h *healthWindow) since(cur healthSnap) (base healthSnap, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Drop snapshots older than span, but keep the newest of those: after
	// a quiet spell it is still a better base than the start.
	first := 0
	for i, s := range h.snaps {
		if cur.at.Sub(s.at) > h.span {
			first = i
		}
	}
	h.snaps = append(h.snaps[:0], h.snaps[first:]...)
	if n := len(h.snaps); n == 0 || cur.at.Sub(h.snaps[n-1].at) >= h.step {
		h.snaps = append(h.snaps, cur)
	}
	if oldest := h.snaps[0]; cur.at.Sub(oldest.at) >= h.step {
		return oldest, true
	}
	return healthSnap{}, false
}
