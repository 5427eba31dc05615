package metrics

import (
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

// newUpstreamFirstByte builds wharf_upstream_first_byte_seconds: the
// least time an upstream's registry took to answer a GET or HEAD, over
// the 5 to 10 minutes up to the last one timed (transport.Latency). It is
// what decides whether the upstream is near (prefetch and segmented fetch
// are for far ones); it is set as answers are timed, so an upstream not
// asked for a while shows its last value.
func newUpstreamFirstByte(f promauto.Factory) *prometheus.GaugeVec {
	return f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wharf_upstream_first_byte_seconds",
		Help: "Least time the registry took to answer a GET or HEAD (connection in hand to first byte), over the 5 to 10 minutes up to the last answer timed; below upstream.farLatency the upstream is near and gets neither prefetch nor segmented fetch.",
	}, []string{"upstream"})
}

// UpstreamFirstByte publishes upstream's least time to first byte.
func (m *Metrics) UpstreamFirstByte(upstream string, d time.Duration) {
	if m != nil {
		m.UpstreamFirstByteSeconds.WithLabelValues(upstream).Set(d.Seconds())
	}
}
