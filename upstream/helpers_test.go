package upstream_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
)

// newClient returns a client for url with fast retries, closed at cleanup.
// edit may change the options first.
func newClient(t *testing.T, url string, edit func(*upstream.Options)) *upstream.Client {
	t.Helper()
	opts := upstream.Options{URL: url, Backoff: time.Millisecond, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	c, err := upstream.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newMetrics returns metrics on a registry of their own.
func newMetrics() *metrics.Metrics {
	return metrics.New(prometheus.NewRegistry())
}
