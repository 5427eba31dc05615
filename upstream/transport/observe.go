package transport

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/wharf-mirror/wharf/metrics"
)

// Observe records every round trip it carries with
// metrics.UpstreamRequest: the upstream's name, the request's kind, the
// status (0 when there was no response) and the time to response headers.
// It sits below retry and auth so each attempt and each token fetch is
// counted on its own; a request retried three times is four requests to
// the upstream, and that is what the operator pays for.
//
// It also counts, with metrics.UpstreamConnection, the connections
// opened to the registry, its CDN and its token server, by upstream: each
// TCP connect that succeeded (httptrace's ConnectDone, which the dialer
// reports for every dial it makes for a request, the guard's checking one
// included), whether the connection then carried a request, went to the
// idle pool unused (a dial that lost the race to a freed connection) or
// was closed (a failed TLS handshake). Few per many requests means
// keep-alive and HTTP/2 are doing their job. Happy Eyeballs may connect
// twice for one connection, and both count.
type Observe struct {
	next    http.RoundTripper
	name    string
	metrics *metrics.Metrics
}

// NewObserve wraps next. m may be nil, in which case nothing is recorded.
func NewObserve(next http.RoundTripper, name string, m *metrics.Metrics) (*Observe, error) {
	if next == nil {
		return nil, errors.New("transport: NewObserve: nil next transport")
	}
	return &Observe{next: next, name: name, metrics: m}, nil
}

// RoundTrip implements http.RoundTripper.
func (o *Observe) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	if o.metrics != nil {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			ConnectDone: func(_, _ string, err error) {
				if err == nil {
					o.metrics.UpstreamConnection(o.name)
				}
			},
		}))
	}
	resp, err := o.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	o.metrics.UpstreamRequest(o.name, KindOf(req), status, time.Since(start))
	return resp, err
}
