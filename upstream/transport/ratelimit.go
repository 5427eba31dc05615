package transport

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf-mirror/wharf/metrics"
)

// RateLimit reads Docker Hub's pull budget from every response and
// publishes it with metrics.RateLimit. Docker Hub sends, for example,
//
//	ratelimit-limit: 100;w=21600
//	ratelimit-remaining: 76;w=21600
//
// (a count and its window in seconds). Only the counts are kept: the window
// is fixed per account and the gauges are for alerting before the budget
// runs out. Responses without both headers leave the gauges alone.
type RateLimit struct {
	next    http.RoundTripper
	name    string
	metrics *metrics.Metrics
}

// NewRateLimit wraps next. m may be nil.
func NewRateLimit(next http.RoundTripper, name string, m *metrics.Metrics) (*RateLimit, error) {
	if next == nil {
		return nil, errors.New("transport: NewRateLimit: nil next transport")
	}
	return &RateLimit{next: next, name: name, metrics: m}, nil
}

// RoundTrip implements http.RoundTripper.
func (rl *RateLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rl.next.RoundTrip(req)
	if resp != nil {
		limit, okL := ParseRateLimit(resp.Header.Get("Ratelimit-Limit"))
		remaining, okR := ParseRateLimit(resp.Header.Get("Ratelimit-Remaining"))
		if okL && okR {
			rl.metrics.RateLimit(rl.name, limit, remaining)
		}
	}
	return resp, err
}

// ParseRateLimit returns the count in a ratelimit header value such as
// "100;w=21600" or "100", and whether there was one.
func ParseRateLimit(v string) (float64, bool) {
	count, _, _ := strings.Cut(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(count), 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(n), true
}
