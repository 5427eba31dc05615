package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/statuspage"
	"github.com/wharf-mirror/wharf/statuspage/statuspagetest"
	"github.com/wharf-mirror/wharf/upstream"
)

// TestStatusPageShowsTheBreaker: with real upstream clients, one refusing
// connections and one answering 503, each row says down, since when, why
// in words and when the next probe is; a miss on the down upstream is a
// grouped error in words. Once the 503 one heals (its probe answers), its
// row says up again since when and keeps the last failure.
func TestStatusPageShowsTheBreaker(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	probed := make(chan struct{}, 16)
	flakySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			select {
			case probed <- struct{}{}:
			default:
			}
		}
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(flakySrv.Close)
	goneSrv := httptest.NewServer(http.NotFoundHandler())
	goneSrv.Close() // its port now refuses connections

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log, recent := grouping(10)
	client := func(name, url string) *upstream.Client {
		c, err := upstream.New(upstream.Options{Name: name, URL: url, Backoff: time.Millisecond, Timeout: 5 * time.Second,
			ProbeMin: 20 * time.Millisecond, ProbeMax: 40 * time.Millisecond, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	flaky, gone := client("flaky.example", flakySrv.URL), client("gone.example", goneSrv.URL)
	set, err := NewUpstreamSet(flaky, gone)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(withStatusPage(t, Options{Store: &recorder{}, Upstreams: set, Metrics: m, Logger: log},
		reg, nil, recent, statuspage.BreakersOf(flaky, gone)))
	if err != nil {
		t.Fatal(err)
	}

	// Real failures mark both down: three attempts each (the retries stop there).
	for _, c := range []*upstream.Client{flaky, gone} {
		_, err := c.HeadManifest(t.Context(), "app", "v1", nil)
		if c.Down() == nil {
			t.Fatalf("%s not down after %v", c.Name(), err)
		}
		log.WithFields(logrus.Fields{"repo": c.Name() + "/app", "route": "manifest"}).WithError(err).Error("request failed")
	}
	_, doc := statuspagetest.Get(t, h, nil)
	t.Logf("while down:\n%s\n%s\n%s", textByID(doc, "upstream-gone.example"), textByID(doc, "upstream-flaky.example"), textByID(doc, "errors"))
	for id, want := range map[string][]string{
		"upstream-gone.example":  {"down", "down since ", "next probe ", "connection refused"},
		"upstream-flaky.example": {"down", "down since ", "next probe ", "503 Service Unavailable"},
		"errors":                 {"upstream gone.example is down since ", "(connection refused)", "gone.example/app", "upstream flaky.example is down since "},
	} {
		text := textByID(doc, id)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("#%s does not show %q: %q", id, w, text)
			}
		}
	}

	failing.Store(false)
	deadline := time.After(10 * time.Second)
	for flaky.Down() != nil { // marked up just after a probe's answer: wait for probes, bounded
		select {
		case <-probed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("the probe did not mark the healed upstream up within 10s")
		}
	}
	_, doc = statuspagetest.Get(t, h, nil)
	row := textByID(doc, "upstream-flaky.example")
	t.Logf("healed: %s", row)
	if strings.Contains(row, "down since") || strings.Contains(row, "next probe") || !strings.Contains(row, "up again since ") ||
		!strings.Contains(row, "503 Service Unavailable") {
		t.Errorf("healed row %q, want up again since …, with the last failure kept", row)
	}
	if row := textByID(doc, "upstream-gone.example"); !strings.Contains(row, "down since ") {
		t.Errorf("the refusing upstream's row %q, want it still down", row)
	}
}
