package s3

import (
	"net/http"
	"time"

	"github.com/wharf-mirror/wharf/metrics"
)

// instrumented counts and times every request the store's client sends,
// retries included: an operator sees the store's errors and latency
// apart from wharf's own.
type instrumented struct {
	next http.RoundTripper
	m    *metrics.Metrics
}

func (t instrumented) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.m.S3Request(r.Method, status, time.Since(start))
	return resp, err
}
