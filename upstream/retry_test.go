package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestRetries(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name         string
		fault        func(*http.Request) upstreamtest.Fault
		maxRetries   int
		wantErr      error
		wantAttempts int
		wantRetries  map[string]float64 // reason → count
		minElapsed   time.Duration
		maxElapsed   time.Duration
	}{
		{name: "429 with Retry-After seconds, then success",
			fault:        firstN(1, upstreamtest.Fault{Status: 429, RetryAfter: "1"}),
			wantAttempts: 2, wantRetries: map[string]float64{"429": 1}, minElapsed: time.Second},
		{name: "429 with a Retry-After date, then success",
			fault:        firstN(1, upstreamtest.Fault{Status: 429, RetryAfter: past}),
			wantAttempts: 2, wantRetries: map[string]float64{"429": 1}},
		{name: "429 with Retry-After beyond MaxRetryAfter: at once",
			fault:   always(upstreamtest.Fault{Status: 429, RetryAfter: "120"}),
			wantErr: upstream.ErrTooManyRequests, wantAttempts: 1, maxElapsed: time.Second},
		{name: "503 twice, then success",
			fault:        firstN(2, upstreamtest.Fault{Status: 503}),
			wantAttempts: 3, wantRetries: map[string]float64{"5xx": 2}},
		{name: "500 is retried",
			fault:        firstN(1, upstreamtest.Fault{Status: 500}),
			wantAttempts: 2, wantRetries: map[string]float64{"5xx": 1}},
		{name: "503 forever: MaxRetries+1 attempts",
			fault: always(upstreamtest.Fault{Status: 503}), maxRetries: 2,
			wantErr: upstream.ErrUnavailable, wantAttempts: 3, wantRetries: map[string]float64{"5xx": 2}},
		{name: "503 forever, MaxRetries 0 means the default 4",
			fault:   always(upstreamtest.Fault{Status: 503}),
			wantErr: upstream.ErrUnavailable, wantAttempts: 5, wantRetries: map[string]float64{"5xx": 4}},
		{name: "503 forever, negative MaxRetries: no retry",
			fault: always(upstreamtest.Fault{Status: 503}), maxRetries: -1,
			wantErr: upstream.ErrUnavailable, wantAttempts: 1},
		{name: "501 is not retried",
			fault:   always(upstreamtest.Fault{Status: 501}),
			wantErr: upstream.ErrUnavailable, wantAttempts: 1},
		{name: "400 is not retried",
			fault:   always(upstreamtest.Fault{Status: 400}),
			wantErr: upstream.ErrRejected, wantAttempts: 1},
		{name: "403 is not retried",
			fault:   always(upstreamtest.Fault{Status: 403}),
			wantErr: upstream.ErrDenied, wantAttempts: 1},
		{name: "connection reset, then success",
			fault:        firstN(2, upstreamtest.Fault{Reset: true}),
			wantAttempts: 3},
		{name: "connection reset forever",
			fault: always(upstreamtest.Fault{Reset: true}), maxRetries: 1,
			wantErr: upstream.ErrUnavailable},
	}
	fr := newFaultyRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr.faulty.ResetCounts()
			fr.faulty.SetFault(tt.fault)
			m := newMetrics()
			c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.MaxRetries, o.Metrics, o.DownAfter = tt.maxRetries, m, 100 })
			start := time.Now()
			_, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
			elapsed := time.Since(start)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetManifest error = %v, want %v", err, tt.wantErr)
			}
			if n := fr.faulty.Count(http.MethodGet, "/manifests/"); tt.wantAttempts > 0 && n != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", n, tt.wantAttempts)
			}
			for reason, want := range tt.wantRetries {
				if got := testutil.ToFloat64(m.UpstreamRetries.WithLabelValues(c.Name(), reason)); got != want {
					t.Errorf("retries{%s} = %v, want %v", reason, got, want)
				}
			}
			if elapsed < tt.minElapsed || (tt.maxElapsed > 0 && elapsed > tt.maxElapsed) {
				t.Errorf("took %v, want between %v and %v", elapsed, tt.minElapsed, tt.maxElapsed)
			}
			if tt.wantErr != nil && testutil.CollectAndCount(m.UpstreamFailures) != 1 {
				t.Errorf("failures counted under %d labels, want 1", testutil.CollectAndCount(m.UpstreamFailures))
			}
		})
	}
}

func TestTooManyRequestsCarriesRetryAfter(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.faulty.SetFault(always(upstreamtest.Fault{Status: 429, RetryAfter: "120"}))
	c := newClient(t, fr.faulty.URL, nil)
	_, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter != 120*time.Second || ue.Code != "TOOMANYREQUESTS" {
		t.Fatalf("error = %#v, want 429 TOOMANYREQUESTS with RetryAfter 2m", err)
	}
	for _, want := range []string{c.Name(), "GET manifest faulty/app:v1", "429", "TOOMANYREQUESTS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestCallerCancellationIsNotRetried: the caller's own deadline ends the
// call, during a backoff too, and reads as the context's error.
func TestCallerCancellationIsNotRetried(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.faulty.SetFault(always(upstreamtest.Fault{Status: 503}))
	m := newMetrics()
	c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.Backoff, o.Metrics = 5*time.Second, m })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetManifest(ctx, "faulty/app", "v1", acceptAll)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("error = %v, want the context's deadline", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v; the backoff outlived the context", time.Since(start))
	}
	if n := testutil.CollectAndCount(m.UpstreamFailures); n != 0 {
		t.Errorf("a cancellation was counted as an upstream failure")
	}
}

func TestHeaderTimeout(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.faulty.SetFault(always(upstreamtest.Fault{Delay: 3 * time.Second}))
	for _, retries := range []int{-1, 1} {
		fr.faulty.ResetCounts()
		c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.Timeout, o.MaxRetries = 150*time.Millisecond, retries })
		start := time.Now()
		_, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
		if !errors.Is(err, upstream.ErrTimeout) {
			t.Errorf("retries %d: error = %v, want ErrTimeout", retries, err)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("retries %d: took %v", retries, time.Since(start))
		}
		if n, want := fr.faulty.Count(http.MethodGet, "/manifests/"), max(retries, 0)+1; n != want {
			t.Errorf("retries %d: %d attempts, want %d", retries, n, want)
		}
	}
}
