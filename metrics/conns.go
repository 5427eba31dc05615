package metrics

import (
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// newUpstreamConnections builds wharf_upstream_connections_total: the
// connections wharf opened to an upstream's hosts (its registry, the CDN
// its redirects lead to, its token server), each TCP connect that
// succeeded, used or not. Against
// wharf_upstream_requests_total it shows how well connections are reused:
// with keep-alive and HTTP/2 it grows by a few per burst of pulls, not by
// one per request.
func newUpstreamConnections(f promauto.Factory) *prometheus.CounterVec {
	return f.NewCounterVec(prometheus.CounterOpts{
		Name: "wharf_upstream_connections_total",
		Help: "TCP connections opened to an upstream's hosts (registry, CDN, token server), whether or not a request used them; compare with wharf_upstream_requests_total for reuse.",
	}, []string{"upstream"})
}

// UpstreamConnection counts a new connection opened for upstream.
func (m *Metrics) UpstreamConnection(upstream string) {
	if m != nil {
		m.UpstreamConnections.WithLabelValues(upstream).Inc()
	}
}

// firstByte is wharf_upstream_first_byte_seconds: the least time each
// upstream's registry took to answer a GET or HEAD over the last 5 to 10
// minutes (transport.Latency), the figure that decides whether the
// upstream is near (prefetch and segmented fetch are for far ones). It is
// read from each upstream's own measure at every scrape, so an upstream
// nobody asked for that long shows no series, as wharf then counts it far,
// rather than the last value it had.
type firstByte struct {
	desc *prometheus.Desc

	mu    sync.Mutex
	least map[string]func() (time.Duration, bool) // by upstream
}

func newFirstByte() *firstByte {
	return &firstByte{
		desc: prometheus.NewDesc(NameUpstreamFirstByte,
			"Least time the registry took to answer a GET or HEAD (connection in hand to first byte) over the last 5 to 10 minutes; below upstream.farLatency the upstream is near and gets neither prefetch nor segmented fetch. No series while none was timed.",
			[]string{"upstream"}, nil),
		least: map[string]func() (time.Duration, bool){},
	}
}

func (c *firstByte) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *firstByte) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	least := maps.Clone(c.least)
	c.mu.Unlock()
	for upstream, f := range least {
		if d, ok := f(); ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, d.Seconds(), upstream)
		}
	}
}

// TimeUpstream publishes upstream's least time to first byte, read from
// least at each scrape (ok false: none timed lately). A second call for
// the same upstream replaces the first.
func (m *Metrics) TimeUpstream(upstream string, least func() (time.Duration, bool)) {
	if m != nil {
		m.upstreamFirstByte.mu.Lock()
		defer m.upstreamFirstByte.mu.Unlock()
		m.upstreamFirstByte.least[upstream] = least
	}
}
