package metrics

import (
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
