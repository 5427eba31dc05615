package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/html"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
)

// holdings is a StatusSource with fixed numbers: the page's arithmetic is
// what these tests check; e2e/status_test.go reads a real store.
type holdings struct {
	bytes, items int64
	stats        cache.Stats
	err          error
	calls        atomic.Int32
}

func (h *holdings) Usage() (int64, int64) { return h.bytes, h.items }
func (h *holdings) Stats() (cache.Stats, error) {
	h.calls.Add(1)
	return h.stats, h.err
}

const gib = 1 << 30

// statusFixture is a server with real collectors on a real registry, a
// logger feeding a RecentErrors hook, and the holdings above.
func statusFixture(t *testing.T, src *holdings) (http.Handler, *metrics.Metrics, *logrus.Logger) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	recent := NewRecentErrors(5)
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.AddHook(recent)
	opts := Options{Store: &recorder{}, Upstream: hub{}, Metrics: m, Logger: log, Gatherer: reg, RecentErrors: recent}
	if src != nil {
		opts.Status = src
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h, m, log
}

func getPage(t *testing.T, h http.Handler) (*httptest.ResponseRecorder, *html.Node) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d: %s", w.Code, w.Body)
	}
	doc, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("page does not parse: %v", err)
	}
	return w, doc
}

func TestStatusPageShowsTheNumbers(t *testing.T) {
	src := &holdings{bytes: gib * 5 / 2, items: 42, stats: cache.Stats{
		Tags: 7, Manifests: 9, Pulls: 10, Hits: 8,
		Repos: []cache.RepoUsage{
			{Repo: "docker.io/library/alpine", Bytes: 3 << 20, Tags: 2, Pulls: 6, Hits: 5},
			{Repo: `docker.io/evil/<script>alert("x")</script>`, Bytes: 1024, Tags: 1, Pulls: 4, Hits: 3},
			{Repo: "docker.io/site/app", Bytes: 512, Tags: 3, Pushed: 2},
		},
	}}
	h, m, log := statusFixture(t, src)
	m.SetCapacity(10 * gib)
	for range 3 {
		m.Hit("manifest")
	}
	m.Miss("blob")
	m.Stale("tag")
	m.Served("cache", 3<<20)
	m.Served("upstream", 512)
	m.UpstreamRead("docker.io", 2048)
	for range 9 {
		m.UpstreamRequest("docker.io", "manifest", 200, time.Millisecond)
	}
	m.UpstreamRequest("docker.io", "blob", 503, time.Millisecond)
	m.UpstreamRequest("docker.io", "blob", 404, time.Millisecond) // the request's fault, not the upstream's
	m.UpstreamRequest("ghcr.io", "manifest", 0, time.Millisecond) // no answer at all
	m.RateLimit("docker.io", 100, 42)
	log.WithFields(logrus.Fields{"request_id": "req-123", "route": "blob", "repo": "library/alpine"}).
		WithError(errors.New(`GET https://bob:hunter2@registry.example/v2/ failed: Authorization "Bearer eyJhbGci.secret" refused; token=abc123`)).
		Error("request failed")
	log.Info("an info line stays off the page")

	w, doc := getPage(t, h)
	body := w.Body.String()
	for id, want := range map[string][]string{
		"hit-ratio": {"75.0%", "without asking an upstream ÷ all manifest, tag and blob requests: 3 of 4", "manifests 100.0%", "blobs 0.0%", "served stale because its upstream failed (1 so far)"},
		"stored":    {"2.5 GiB", "25.0% of 10.0 GiB capacity", "42 blobs and manifests"},
		"images":    {"7", "tags in 3 repositories", "9 manifests", "10 manifest pulls"},
		"saved":     {"3.0 MiB", "512 B passed through", "2.0 KiB fetched"},
		"upstreams": {"docker.io", "degraded", "11", "42 of 100 pulls left", "ghcr.io", "down", "not announced"},
		"repositories": {"docker.io/library/alpine", "3.0 MiB", "83.3%",
			`docker.io/evil/<script>alert("x")</script>`, "75.0%"},
		"errors": {"req-123", "blob", "library/alpine", "request failed: GET https://REDACTED@registry.example/v2/",
			"Bearer REDACTED", "token=REDACTED"},
	} {
		text := textByID(doc, id)
		if text == "" {
			t.Errorf("no element #%s", id)
		}
		for _, s := range want {
			if !strings.Contains(text, s) {
				t.Errorf("#%s does not show %q:\n%s", id, s, text)
			}
		}
	}
	if row := textByID(doc, "repo-docker.io/site/app"); !strings.Contains(row, "pushed") {
		t.Errorf("a repository with pushed tags is not marked: %q", row)
	}
	if row := textByID(doc, "repo-docker.io/library/alpine"); strings.Contains(row, "pushed") {
		t.Errorf("a mirrored repository is marked pushed: %q", row)
	}
	// The raw chain, redacted, is the error's hover text.
	if title := titleOf(doc, "what"); !strings.Contains(title, "request failed: GET https://REDACTED@registry.example/v2/ failed") {
		t.Errorf("error row's title %q, want the redacted chain", title)
	}
	for _, leak := range []string{"hunter2", "eyJhbGci", "abc123", "an info line", "<script>alert"} {
		if strings.Contains(body, leak) {
			t.Errorf("page contains %q", leak)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("repository name not escaped")
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"Cache-Control":           "no-store",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues(routeStatus, "GET", "200")); n != 1 {
		t.Errorf("wharf_http_requests_total{route=%q} = %v, want 1", routeStatus, n)
	}
	if got := w.Header().Get("Docker-Distribution-Api-Version"); got != "" {
		t.Errorf("the page is no registry endpoint, but says %q", got)
	}
}

func TestStatusPageHead(t *testing.T) {
	h, _, _ := statusFixture(t, &holdings{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD / = %d, %d body bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// With nothing pulled yet the page says so instead of dividing by zero.
func TestStatusPageEmptyMirror(t *testing.T) {
	h, _, _ := statusFixture(t, &holdings{})
	_, doc := getPage(t, h)
	for id, want := range map[string]string{
		"hit-ratio":    "—",
		"capacity":     "no size cap",
		"upstreams":    "idle",
		"repositories": "Nothing cached yet.",
		"errors":       "No errors logged since start.",
	} {
		if text := textByID(doc, id); !strings.Contains(text, want) {
			t.Errorf("#%s = %q, want %q in it", id, text, want)
		}
	}
}

// A store that cannot report still leaves a useful page.
func TestStatusPageStoreStatsFail(t *testing.T) {
	h, m, _ := statusFixture(t, &holdings{bytes: 2048, err: errors.New("index: closed")})
	m.Hit("blob")
	w, doc := getPage(t, h)
	if !strings.Contains(w.Body.String(), "Could not read store statistics: index: closed") {
		t.Errorf("the failure is not shown")
	}
	if got := textByID(doc, "hit-ratio"); !strings.Contains(got, "100.0%") {
		t.Errorf("hit ratio %q", got)
	}
	if got := textByID(doc, "stored"); !strings.Contains(got, "2.0 KiB") {
		t.Errorf("stored %q", got)
	}
}

// Stats walks the whole index: page views within statsTTL share one walk.
func TestStatusPageCachesStoreStats(t *testing.T) {
	src := &holdings{}
	reg := prometheus.NewRegistry()
	p, err := newStatusPage(Options{Upstream: hub{}, Status: src, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return now }
	view := func() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	view()
	view()
	now = now.Add(statsTTL - time.Second)
	view()
	if n := src.calls.Load(); n != 1 {
		t.Errorf("Stats called %d times within the TTL, want 1", n)
	}
	now = now.Add(2 * time.Second)
	view()
	if n := src.calls.Load(); n != 2 {
		t.Errorf("Stats called %d times after the TTL, want 2", n)
	}
}

// Health looks at recent traffic: an upstream that failed a while ago and
// has answered well since is ok again.
func TestStatusPageHealthIsRecent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	p, err := newStatusPage(Options{Upstream: hub{}, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return now }
	for range 5 {
		m.UpstreamRequest("docker.io", "manifest", 0, time.Millisecond)
	}
	m.UpstreamFailure("docker.io", "network")
	if got := upstreamRow(t, p, "docker.io"); got.Health != "down" {
		t.Errorf("after failures: %+v, want down", got)
	}
	now = now.Add(healthStep)
	for range 20 {
		m.UpstreamRequest("docker.io", "manifest", 200, time.Millisecond)
	}
	if got := upstreamRow(t, p, "docker.io"); got.Health != "ok" || got.Requests != 20 {
		t.Errorf("after recovery: %+v, want ok over 20 requests", got)
	}
	now = now.Add(healthSpan + healthStep)
	if got := upstreamRow(t, p, "docker.io"); got.Health != "idle" {
		t.Errorf("after a quiet window: %+v, want idle", got)
	}
}

func upstreamRow(t *testing.T, p *statusPage, name string) upstreamStatus {
	t.Helper()
	for _, u := range p.report(t.Context(), viewer{readsAll: true}).Upstreams {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no row for %s", name)
	return upstreamStatus{}
}

func TestHealthGrades(t *testing.T) {
	for _, c := range []struct {
		req, bad, ops float64
		want          string
	}{
		{0, 0, 0, "idle"},
		{10, 0, 0, "ok"},
		{100, 5, 0, "ok"},
		{100, 6, 0, "degraded"},
		{100, 0, 1, "degraded"},
		{3, 3, 1, "down"},
		{0, 0, 2, "down"},
	} {
		if got := health(c.req, c.bad, c.ops); got != c.want {
			t.Errorf("health(%v, %v, %v) = %s, want %s", c.req, c.bad, c.ops, got, c.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/v2/":              "https://REDACTED@host/v2/",
		"Authorization: Basic dXNlcjpwYXNz": "Authorization: Basic REDACTED",
		"GET /token?access_token=xyz&x=1":   "GET /token?access_token=REDACTED&x=1",
		`{"password": "s3cret"}`:            `{"password": "REDACTED"}`,
		"basic auth failed":                 "basic auth failed",
		"plain error":                       "plain error",
		strings.Repeat("é", 300):            strings.Repeat("é", 250) + "…",
	} {
		if got := redact(in, 500); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtBytes(int64(0)), "0 B"},
		{fmtBytes(1023.0), "1023 B"},
		{fmtBytes(int64(1536)), "1.5 KiB"},
		{fmtBytes(float64(5 * gib / 2)), "2.5 GiB"},
		{fmtCount(1234567.0), "1,234,567"},
		{fmtCount(int64(-1000)), "-1,000"},
		{fmtCount(999), "999"},
		{fmtRatio(0.0, 0.0), "—"},
		{fmtRatio(int64(1), int64(2)), "33.3%"},
		{budgetPercent(150, 100), "100.0"},
		{budgetPercent(5, 0), "0"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// textByID is the text content of the element with id, "" if none.
func textByID(n *html.Node, id string) string {
	if n.Type == html.ElementNode {
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == id {
				var b strings.Builder
				var walk func(*html.Node)
				walk = func(n *html.Node) {
					if n.Type == html.TextNode {
						b.WriteString(n.Data)
					}
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						walk(c)
					}
				}
				walk(n)
				return strings.Join(strings.Fields(b.String()), " ")
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if s := textByID(c, id); s != "" {
			return s
		}
	}
	return ""
}

// titleOf is the title attribute of the first element of class class.
func titleOf(n *html.Node, class string) string {
	if n.Type == html.ElementNode {
		var title string
		var has bool
		for _, a := range n.Attr {
			switch {
			case a.Key == "title":
				title = a.Val
			case a.Key == "class" && slices.Contains(strings.Fields(a.Val), class):
				has = true
			}
		}
		if has {
			return title
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if s := titleOf(c, class); s != "" {
			return s
		}
	}
	return ""
}
