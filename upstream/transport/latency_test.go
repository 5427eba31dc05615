package transport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/metrics"
)

// TestLatencyTimesTheRegistry: the registry's GETs and HEADs are timed
// from the request written to the first byte of the answer, and Least is
// the smallest; a request to another host (a CDN a redirect leads to) or
// with a body is not timed.
func TestLatencyTimesTheRegistry(t *testing.T) {
	const slow = 40 * time.Millisecond
	delay := map[string]time.Duration{"/v2/slow": slow} // the fault: an answer this late
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay[r.URL.Path])
		io.WriteString(w, "ok")
	})
	reg := httptest.NewServer(handler)
	defer reg.Close()
	cdn := httptest.NewServer(handler)
	defer cdn.Close()
	base, _ := url.Parse(reg.URL)
	prom := prometheus.NewRegistry()
	l, err := NewLatency(http.DefaultTransport, base, "up", metrics.New(prom))
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, target string, body io.Reader) {
		t.Helper()
		req, _ := http.NewRequest(method, target, body)
		resp, err := l.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if _, ok := l.Least(); ok {
		t.Fatal("Least known before any request")
	}
	if g, ok := firstByteGauge(t, prom, "up"); ok {
		t.Fatalf("wharf_upstream_first_byte_seconds = %v before any request, want no series", g)
	}
	do(http.MethodPut, reg.URL+"/v2/fast", strings.NewReader("body"))
	do(http.MethodGet, cdn.URL+"/v2/fast", nil)
	if least, ok := l.Least(); ok {
		t.Fatalf("Least = %v after a PUT and a CDN's GET only, want none", least)
	}
	do(http.MethodGet, reg.URL+"/v2/slow", nil)
	least, ok := l.Least()
	if !ok || least < slow {
		t.Fatalf("Least = %v, %v after a GET answered in %v, want at least that", least, ok, slow)
	}
	if g, ok := firstByteGauge(t, prom, "up"); !ok || g != least.Seconds() {
		t.Errorf("wharf_upstream_first_byte_seconds = %v, %v, want %v", g, ok, least.Seconds())
	}
	for range 3 { // the least of a few: one answer on a busy machine may be late
		do(http.MethodHead, reg.URL+"/v2/fast", nil)
	}
	if fast, ok := l.Least(); !ok || fast >= least {
		t.Errorf("Least = %v, %v after a HEAD answered at once, want less than %v", fast, ok, least)
	}
}

// TestLatencyForgets: a sample counts for one window after its own, so a
// registry that moved away is seen as far again within two windows, and
// one not asked for two windows is unknown.
func TestLatencyForgets(t *testing.T) {
	base, _ := url.Parse("http://registry.test")
	prom := prometheus.NewRegistry()
	l, err := NewLatency(http.DefaultTransport, base, "up", metrics.New(prom))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	l.now = func() time.Time { return now }
	for _, s := range []struct {
		advance time.Duration
		sample  time.Duration // 0: none
		want    time.Duration // 0: unknown
	}{
		{0, 2 * time.Millisecond, 2 * time.Millisecond},
		{time.Minute, 50 * time.Millisecond, 2 * time.Millisecond},   // same window: the least
		{LatencyWindow, 60 * time.Millisecond, 2 * time.Millisecond}, // the next: the last one's still counts
		{LatencyWindow, 0, 60 * time.Millisecond},                    // a window on, unsampled: only the newer window's
		{LatencyWindow, 0, 0},                                        // two windows on: nothing left
		{0, 70 * time.Millisecond, 70 * time.Millisecond},
		// A sample late in its window: at the next window's end it is gone,
		// whenever the rollover was noticed.
		{LatencyWindow - time.Second, 3 * time.Millisecond, 3 * time.Millisecond},
		{LatencyWindow / 2, 80 * time.Millisecond, 3 * time.Millisecond},
		{LatencyWindow/2 + time.Second, 0, 80 * time.Millisecond},
	} {
		now = now.Add(s.advance)
		if s.sample > 0 {
			l.observe(s.sample)
		}
		got, ok := l.Least()
		if got != s.want || ok != (s.want > 0) {
			t.Errorf("after %v more, sample %v: Least = %v, %v, want %v", s.advance, s.sample, got, ok, s.want)
		}
		// The metric is read at the scrape: a forgotten sample is not shown.
		if g, ok := firstByteGauge(t, prom, "up"); ok != (s.want > 0) || g != s.want.Seconds() {
			t.Errorf("after %v more, sample %v: wharf_upstream_first_byte_seconds = %v, %v, want %v", s.advance, s.sample, g, ok, s.want.Seconds())
		}
	}
}

// firstByteGauge scrapes reg for upstream's
// wharf_upstream_first_byte_seconds; ok is false when it has no series.
func firstByteGauge(t *testing.T, reg *prometheus.Registry, upstream string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "wharf_upstream_first_byte_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "upstream" && l.GetValue() == upstream {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}
