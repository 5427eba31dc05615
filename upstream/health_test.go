package upstream_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestFailingUpstreamMarkedDown: three consecutive failed attempts mark the
// upstream down (the retries stop there); while down nothing is sent and
// the error says since when; the background probe marks it up on the first
// answer, and the next request reaches the upstream again.
func TestFailingUpstreamMarkedDown(t *testing.T) {
	fr := newFaultyRegistry(t)
	var failing atomic.Bool
	failing.Store(true)
	probed := make(chan struct{}, 16)
	fr.faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if r.URL.Path == "/v2/" {
			select {
			case probed <- struct{}{}:
			default:
			}
		}
		if failing.Load() {
			return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
		}
		return upstreamtest.Fault{}
	})
	m := newMetrics()
	c := newClient(t, fr.faulty.URL, func(o *upstream.Options) {
		o.Metrics, o.ProbeMin, o.ProbeMax = m, 20*time.Millisecond, 40*time.Millisecond
	})
	up := func() float64 { return testutil.ToFloat64(m.UpstreamUp.WithLabelValues(c.Name())) }
	if up() != 1 {
		t.Fatalf("wharf_upstream_up = %v before any request, want 1", up())
	}

	_, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
	if !errors.Is(err, upstream.ErrDown) || !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrDown (an ErrUnavailable)", err)
	}
	if n := fr.faulty.Count(http.MethodGet, "/manifests/"); n != 3 {
		t.Errorf("%d attempts before the upstream was marked down, want 3 (not the 5 retries allow)", n)
	}
	if up() != 0 {
		t.Errorf("wharf_upstream_up = %v while down, want 0", up())
	}
	if err := c.Down(); !errors.Is(err, upstream.ErrDown) || !strings.Contains(err.Error(), "503") {
		t.Errorf("Down() = %v, want ErrDown naming the 503 that marked it down", err)
	}

	// While down: no request reaches the upstream, the error says since when
	// and when to come back.
	fr.faulty.ResetCounts()
	_, err = c.HeadManifest(t.Context(), "faulty/app", "v1", acceptAll)
	var ue *upstream.Error
	if !errors.As(err, &ue) || !errors.Is(err, upstream.ErrDown) || ue.RetryAfter <= 0 {
		t.Fatalf("HEAD while down: %v, want ErrDown with a RetryAfter", err)
	}
	if n := fr.faulty.Count(http.MethodHead, "/manifests/"); n != 0 {
		t.Errorf("%d HEADs reached the upstream while it was down, want 0", n)
	}

	// The upstream heals: the probe marks it up.
	<-probed // at least one probe failed while it was down
	failing.Store(false)
	deadline := time.After(10 * time.Second)
	for up() != 1 { // the gauge flips just after a probe's answer: poll it, bounded
		select {
		case <-probed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("the probe did not mark the healed upstream up within 10s")
		}
	}
	if err := c.Down(); err != nil {
		t.Errorf("Down() = %v after the probe marked it up, want nil", err)
	}
	if _, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll); err != nil {
		t.Fatalf("after the probe marked it up: %v", err)
	}
}

// TestHungUpstreamMarkedDown: an upstream that accepts and never answers
// is known to be down after StallAfter × DownAfter stalled requests, long
// before its header timeout, while those requests are still held; the
// next request fails at once without reaching it.
func TestHungUpstreamMarkedDown(t *testing.T) {
	held := make(chan struct{}, 8)
	c, m, reached := hungUpstream(t, held)

	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := c.HeadManifest(t.Context(), "app/hung", fmt.Sprintf("v%d", i), acceptAll)
			errs <- err
		}()
	}
	for range 3 {
		<-held
	}
	// The three are held; the requests themselves return ErrDown at their
	// next retry, once the third stall has marked the upstream down.
	for range 3 {
		if err := <-errs; !errors.Is(err, upstream.ErrDown) {
			t.Errorf("a hung request: %v, want ErrDown", err)
		}
	}
	if got := testutil.ToFloat64(m.UpstreamUp.WithLabelValues(c.Name())); got != 0 {
		t.Errorf("wharf_upstream_up = %v after three stalls, want 0", got)
	}
	before := reached.Load()
	if _, err := c.HeadManifest(t.Context(), "app/hung", "v9", acceptAll); !errors.Is(err, upstream.ErrDown) {
		t.Errorf("while down: %v, want ErrDown", err)
	}
	if reached.Load() != before {
		t.Error("a request reached the upstream while it was down")
	}
}

// TestLoneHungRequestMarksUpstreamDown: one request alone to an upstream
// that accepts and never answers counts a failure for each StallAfter it
// waits, so after DownAfter of them the upstream is down and the request
// itself ends with ErrDown, long before its one-minute header timeout
// (each wait counted once, it took DownAfter header timeouts: 63 s for a
// miss with serve's defaults).
func TestLoneHungRequestMarksUpstreamDown(t *testing.T) {
	c, m, reached := hungUpstream(t, nil)

	_, err := c.GetManifest(t.Context(), "app/hung", "v1", acceptAll)
	if !errors.Is(err, upstream.ErrDown) {
		t.Fatalf("a lone hung request: %v, want ErrDown", err)
	}
	if !strings.Contains(err.Error(), "no response headers after 150ms") {
		t.Errorf("error %q does not say how long it waited (3 × 50ms)", err)
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("%d requests reached the hung upstream, want 1 (no retry once it is down)", n)
	}
	if got := testutil.ToFloat64(m.UpstreamUp.WithLabelValues(c.Name())); got != 0 {
		t.Errorf("wharf_upstream_up = %v, want 0", got)
	}
}

// hungUpstream serves a client whose upstream accepts every request and
// never answers it (StallAfter 50ms, header timeout a minute, probe not
// before a minute); each request reached is counted in reached and, with
// held non-nil, signalled there.
func hungUpstream(t *testing.T, held chan<- struct{}) (c *upstream.Client, m *metrics.Metrics, reached *atomic.Int32) {
	t.Helper()
	release := make(chan struct{})
	reached = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if held != nil {
			held <- struct{}{}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	m = newMetrics()
	c = newClient(t, srv.URL, func(o *upstream.Options) {
		o.Metrics, o.StallAfter, o.Timeout, o.ProbeMin = m, 50*time.Millisecond, time.Minute, time.Minute
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close and c.Close: the held handlers return
	return c, m, reached
}
