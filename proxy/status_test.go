package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/statuspage"
	"github.com/wharf-mirror/wharf/statuspage/statuspagetest"
)

// holdings is a statuspage.Store with fixed numbers.
type holdings struct{ stats inspect.Stats }

func (h *holdings) Usage() (int64, int64)         { return 0, 0 }
func (h *holdings) Stats() (inspect.Stats, error) { return h.stats, nil }

// withStatusPage sets o.StatusPage to a page as serve builds it: on o's
// registry reg, the store src (may be nil), the hook recent (may be nil),
// o's upstreams named by ClientName, and health.
func withStatusPage(t *testing.T, o Options, reg prometheus.Gatherer, src statuspage.Store, recent *RecentErrors,
	health func(string) (statuspage.Health, bool)) Options {
	t.Helper()
	ups := o.Upstreams
	if ups == nil {
		set, err := NewUpstreamSet(o.Upstream)
		if err != nil {
			t.Fatal(err)
		}
		ups = set
	}
	po := statuspage.Options{Gatherer: reg, Upstreams: namesOf(ups), Health: health,
		PullName: func(r cache.Repo) string { return ClientName(ups, r) }}
	if src != nil {
		po.Store = src
	}
	if recent != nil {
		po.Errors = recent
	}
	p, err := statuspage.New(po)
	if err != nil {
		t.Fatal(err)
	}
	o.StatusPage = p
	return o
}

var textByID = statuspagetest.TextByID

// TestStatusPageMountedAtRoot: proxy serves the page at / under its own
// route name, without the registry's header, feeds it the errors its hook
// grouped (secrets redacted) and names repositories as clients pull them.
func TestStatusPageMountedAtRoot(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log, recent := grouping(5)
	src := &holdings{stats: inspect.Stats{Repos: []inspect.RepoUsage{{Repo: "docker.io/library/alpine", Tags: 1}}}}
	h, err := New(withStatusPage(t, Options{Store: &recorder{}, Upstream: hub{}, Metrics: m, Logger: log}, reg, src, recent, nil))
	if err != nil {
		t.Fatal(err)
	}
	log.WithFields(logrus.Fields{"request_id": "req-123", "route": "blob", "repo": "library/alpine"}).
		WithError(errors.New(`GET https://bob:hunter2@registry.example/v2/ failed: Authorization "Bearer eyJhbGci.secret" refused; token=abc123`)).
		Error("request failed")
	log.Info("an info line stays off the page")

	w, doc := statuspagetest.Get(t, h, nil)
	body := w.Body.String()
	text := textByID(doc, "errors")
	for _, s := range []string{"req-123", "blob", "library/alpine", "request failed: GET https://REDACTED@registry.example/v2/",
		"Bearer REDACTED", "token=REDACTED"} {
		if !strings.Contains(text, s) {
			t.Errorf("#errors does not show %q:\n%s", s, text)
		}
	}
	if title := statuspagetest.TitleOf(doc, "what"); !strings.Contains(title, "request failed: GET https://REDACTED@registry.example/v2/ failed") {
		t.Errorf("error row's title %q, want the redacted chain", title)
	}
	for _, leak := range []string{"hunter2", "eyJhbGci", "abc123", "an info line"} {
		if strings.Contains(body, leak) {
			t.Errorf("page contains %q", leak)
		}
	}
	if row := textByID(doc, "repo-docker.io/library/alpine"); !strings.HasPrefix(row, "library/alpine") {
		t.Errorf("the default upstream's repository is not named as a client pulls it: %q", row)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues(routeStatus, "GET", "200")); n != 1 {
		t.Errorf("wharf_http_requests_total{route=%q} = %v, want 1", routeStatus, n)
	}
	if got := w.Header().Get("Docker-Distribution-Api-Version"); got != "" {
		t.Errorf("the page is no registry endpoint, but says %q", got)
	}
}
