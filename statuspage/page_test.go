package statuspage

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/statuspage/statuspagetest"
)

// holdings is a Store with fixed numbers: the page's arithmetic is what
// these tests check; e2e/status_test.go reads a real store.
type holdings struct {
	bytes, items int64
	stats        inspect.Stats
	err          error
	calls        atomic.Int32
}

func (h *holdings) Usage() (int64, int64) { return h.bytes, h.items }
func (h *holdings) Stats() (inspect.Stats, error) {
	h.calls.Add(1)
	return h.stats, h.err
}

// fixedErrors is an Errors source with fixed groups; proxy's tests feed
// the page from its logrus hook.
type fixedErrors []ErrorGroup

func (f fixedErrors) Entries() []ErrorGroup { return f }
func (f fixedErrors) Limit() int            { return 5 }

const gib = 1 << 30

// hubNames names docker.io's repositories by path, as proxy.ClientName
// does for the default upstream.
func hubNames(r cache.Repo) string {
	if r.Upstream == "docker.io" {
		return r.Path
	}
	return ""
}

// fixture is a page over real collectors on a real registry and src (nil:
// no store), with errs, seen by a viewer who may read everything.
func fixture(t *testing.T, src *holdings, errs ...ErrorGroup) (*Page, http.Handler, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	o := Options{Gatherer: reg, Errors: fixedErrors(errs), Upstreams: []string{"docker.io"}, PullName: hubNames}
	if src != nil {
		o.Store = src
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p, readsAll(p), m
}

func readsAll(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(WithViewer(r.Context(), Viewer{ReadsAll: true})))
	})
}

var textByID = statuspagetest.TextByID

func TestStatusPageShowsTheNumbers(t *testing.T) {
	src := &holdings{bytes: gib * 5 / 2, items: 42, stats: inspect.Stats{
		Tags: 7, Manifests: 9, Pulls: 10, Hits: 8,
		Repos: []inspect.RepoUsage{
			{Repo: "docker.io/library/alpine", Bytes: 3 << 20, Tags: 2, Pulls: 6, Hits: 5},
			{Repo: `docker.io/evil/<script>alert("x")</script>`, Bytes: 1024, Tags: 1, Pulls: 4, Hits: 3},
			{Repo: "docker.io/site/app", Bytes: 512, Tags: 3, Pushed: 2},
		},
	}}
	now := time.Now()
	p, h, m := fixture(t, src, ErrorGroup{Kind: "error", Words: "request failed: index: closed", Raw: "request failed: index: closed (raw)",
		Level: "error", Repo: "library/alpine", Route: "blob", RequestID: "req-123", Count: 1, First: now, Last: now})
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
	m.TimeUpstream("docker.io", func() (time.Duration, bool) { return 48 * time.Millisecond, true })
	m.TimeUpstream("ghcr.io", func() (time.Duration, bool) { return 0, false }) // nothing timed lately
	m.TimeUpstream("quay.io", func() (time.Duration, bool) { return 2 * time.Millisecond, true })
	p.o.Health = func(name string) (Health, bool) { // quay.io says it is near
		return Health{Near: true}, name == "quay.io"
	}
	m.UpstreamRequest("quay.io", "manifest", 200, time.Millisecond)
	m.Prefetched("fetched", 3<<20)
	m.Prefetched("near_upstream", 5<<20) // not fetched: not counted
	m.PrefetchUsedBlob(1 << 20)

	w, doc := statuspagetest.Get(t, h, nil)
	body := w.Body.String()
	for id, want := range map[string][]string{
		"hit-ratio":  {"75.0%", "without asking an upstream ÷ all manifest, tag and blob requests: 3 of 4", "manifests 100.0%", "blobs 0.0%", "served stale because its upstream failed (1 so far)"},
		"stored":     {"2.5 GiB", "25.0% of 10 GiB capacity", "42 blobs and manifests"},
		"images":     {"7", "tags in 3 repositories", "9 manifests", "10 manifest pulls"},
		"saved":      {"3.0 MiB", "512 B passed through", "2.0 KiB fetched"},
		"prefetched": {"3.0 MiB prefetched before clients asked", "1.0 MiB of it read since"},
		// Distance: the registry's least time to first byte, and near
		// as the upstream itself says (Health).
		"upstream-docker.io": {"far", "first byte in 48 ms"},
		"upstream-ghcr.io":   {"far", "not timed lately"},
		"upstream-quay.io":   {"near", "first byte in 2.00 ms"},
		"upstreams":          {"docker.io", "degraded", "11", "42 of 100 pulls left", "ghcr.io", "down", "not announced"},
		// Named as a client pulls them (the default upstream's by path).
		"repositories": {"library/alpine", "3.0 MiB", "83.3%",
			`evil/<script>alert("x")</script>`, "75.0%"},
		"errors": {"req-123", "blob", "library/alpine", "request failed: index: closed"},
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
	for id, not := range map[string]string{"upstream-docker.io": "near", "upstream-ghcr.io": "near", "upstream-quay.io": "far"} {
		if row := textByID(doc, id); strings.Contains(row, not) {
			t.Errorf("#%s shows %q: %q", id, not, row)
		}
	}
	if row := textByID(doc, "repo-docker.io/site/app"); !strings.Contains(row, "pushed") {
		t.Errorf("a repository with pushed tags is not marked: %q", row)
	}
	if row := textByID(doc, "repo-docker.io/library/alpine"); !strings.HasPrefix(row, "library/alpine") {
		t.Errorf("the default upstream's repository is not named as a client pulls it: %q", row)
	}
	if row := textByID(doc, "repo-docker.io/library/alpine"); strings.Contains(row, "pushed") {
		t.Errorf("a mirrored repository is marked pushed: %q", row)
	}
	// The raw chain is the error's hover text.
	if title := statuspagetest.TitleOf(doc, "what"); title != "request failed: index: closed (raw)" {
		t.Errorf("error row's title %q, want the raw chain", title)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("repository name not escaped")
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// TestStatusPageWithoutViewerNamesNoRepository: mounted without a Viewer
// in the context, the page hides every repository and every error, and
// still shows the totals.
func TestStatusPageWithoutViewerNamesNoRepository(t *testing.T) {
	src := &holdings{stats: inspect.Stats{Tags: 3, Repos: []inspect.RepoUsage{{Repo: "docker.io/alice/secret", Tags: 3, Bytes: 10}}}}
	p, _, m := fixture(t, src, ErrorGroup{Kind: "error", Words: "upstream alice/secret unreachable", Level: "error"},
		ErrorGroup{Kind: "error", Words: "fill failed", Level: "error", Repo: "docker.io/alice/secret"})
	m.Hit("blob")
	w, doc := statuspagetest.Get(t, p, nil)
	if strings.Contains(w.Body.String(), "alice") || strings.Contains(w.Body.String(), "fill failed") {
		t.Errorf("the page without a viewer names a repository:\n%s", w.Body)
	}
	if got := textByID(doc, "hit-ratio"); !strings.Contains(got, "100.0%") {
		t.Errorf("hit ratio %q, want the totals shown", got)
	}
	if got := textByID(doc, "images"); !strings.Contains(got, "tags in 0 repositories") {
		t.Errorf("#images %q, want the viewer's count: none", got)
	}
}

// TestStatusPageCountsOnlyReadableRepositories: past the top ten, "and N
// more" counts the repositories the viewer may read, not the store's.
func TestStatusPageCountsOnlyReadableRepositories(t *testing.T) {
	src := &holdings{}
	for i := range 15 {
		src.stats.Repos = append(src.stats.Repos, inspect.RepoUsage{Repo: fmt.Sprintf("docker.io/team/app%02d", i), Tags: 1})
	}
	src.stats.Repos = append(src.stats.Repos, inspect.RepoUsage{Repo: "docker.io/alice/secret", Tags: 1})
	p, _, _ := fixture(t, src)
	v := Viewer{MayRead: func(repo string) bool {
		return strings.HasPrefix(repo, "docker.io/team/") && repo != "docker.io/team/app14"
	}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	_, doc := statuspagetest.Get(t, p, r.WithContext(WithViewer(r.Context(), v)))
	if got := textByID(doc, "repositories"); !strings.Contains(got, "and 4 more") || strings.Contains(got, "app14") {
		t.Errorf("#repositories %q, want ten rows and 4 more (14 readable)", got)
	}
	if got := textByID(doc, "images"); !strings.Contains(got, "tags in 14 repositories") {
		t.Errorf("#images %q, want 14 repositories", got)
	}
}

func TestStatusPageHead(t *testing.T) {
	_, h, _ := fixture(t, &holdings{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD / = %d, %d body bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// With nothing pulled yet the page says so instead of dividing by zero.
func TestStatusPageEmptyMirror(t *testing.T) {
	_, h, _ := fixture(t, &holdings{})
	_, doc := statuspagetest.Get(t, h, nil)
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
	_, h, m := fixture(t, &holdings{bytes: 2048, err: errors.New("index: closed")})
	m.Hit("blob")
	w, doc := statuspagetest.Get(t, h, nil)
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
	p, h, _ := fixture(t, src)
	now := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return now }
	view := func() { statuspagetest.Get(t, h, nil) }
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
	p, _, m := fixture(t, nil)
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

func upstreamRow(t *testing.T, p *Page, name string) upstreamStatus {
	t.Helper()
	for _, u := range p.report(t.Context(), Viewer{ReadsAll: true}).Upstreams {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no row for %s", name)
	return upstreamStatus{}
}

// TestPageReadsEveryMetric: each collector the page reads, moved once
// through the metrics package's own helpers, reaches the page's numbers;
// a renamed metric or label would leave one at zero.
func TestPageReadsEveryMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Hit("blob")
	m.Miss("tag")
	m.Stale("tag")
	m.Served("cache", 1)
	m.Served("upstream", 1)
	m.UpstreamRead("u", 1)
	m.UpstreamRequest("u", "blob", 503, time.Millisecond)
	m.UpstreamFailure("u", "network")
	m.RateLimit("u", 100, 42)
	m.SetCapacity(1)
	m.SetCacheUsage(1, 1)
	m.Evicted(1)
	m.FillStarted()
	m.ClusterChanged(3)
	m.PeerRequest("ok")
	m.PeerRequest("failed_over")
	m.PeerRequest("relayed_error")
	m.PeerReceived(1)
	m.PeerServed("blob")
	m.S3Request("GET", 503, time.Millisecond)
	m.SetTierLocalSize(1)
	m.TierSharedRead()
	m.TimeUpstream("u", func() (time.Duration, bool) { return time.Millisecond, true })
	m.Prefetched("fetched", 1)
	m.PrefetchUsedBlob(1)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := readGathered(fams)
	for what, v := range map[string]float64{
		"hits": g.hits["blob"], "misses": g.misses["tag"], "stale": g.stale["tag"],
		"served from cache": g.served["cache"], "served from upstream": g.served["upstream"],
		"upstream bytes": g.upstreamBytes["u"], "upstream requests": g.upRequests["u"],
		"bad upstream answers": g.upBadResponses["u"], "upstream failures": g.upFailures["u"],
		"pull budget": g.limit["u"], "pulls left": g.remain["u"],
		"capacity": g.capacity, "size": g.size, "blobs": g.blobs, "evicted": g.evictedBytes, "fills": g.fillsInFlight,
		"members up": g.membersUp, "membership changes": g.changes, "peer answers": g.peerReq["ok"],
		"peer failovers": g.peerReq["failed_over"], "relayed errors": g.peerReq["relayed_error"],
		"bytes from peers": g.peerBytes, "served to peers": g.peerServed,
		"S3 requests": g.s3Requests, "S3 failures": g.s3Bad, "S3 latency": g.s3Timed,
		"local copies": g.localBytes, "bucket reads": g.sharedR,
		"first byte": g.firstByte["u"], "prefetched": g.prefetched, "prefetched read": g.prefetchRd,
	} {
		if v == 0 {
			t.Errorf("the page reads no %s from the registry", what)
		}
	}
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
		if got := grade(c.req, c.bad, c.ops); got != c.want {
			t.Errorf("grade(%v, %v, %v) = %s, want %s", c.req, c.bad, c.ops, got, c.want)
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
		if got := Redact(in, 500); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtBytes(int64(0)), "0 B"},
		{fmtBytes(1023.0), "1023 B"},
		{fmtBytes(int64(1536)), "1.5 KiB"},
		{fmtBytes(float64(5 * gib / 2)), "2.5 GiB"},
		{fmtBytes(float64(312 << 20)), "312 MiB"},
		{fmtBytes(-1.0), "0 B"},
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

// TestStatusPageShowsClusterAndStore: a replica of a cluster on S3 shows
// what it sees of the cluster and of the shared store; a single node on
// its disk shows neither card.
func TestStatusPageShowsClusterAndStore(t *testing.T) {
	_, h, m := fixture(t, &holdings{})
	get := func() string { w, _ := statuspagetest.Get(t, h, nil); return w.Body.String() }
	body := get()
	for _, id := range []string{`id="cluster"`, `id="shared-store"`} {
		if strings.Contains(body, id) {
			t.Errorf("a single node's page has %s", id)
		}
	}
	m.ClusterChanged(3)
	for range 5 {
		m.PeerRequest("ok")
	}
	m.PeerRequest("failed_over")
	m.PeerReceived(3 << 20)
	m.S3Request("GET", 200, 3*time.Millisecond)
	m.S3Request("PUT", 0, 0)
	m.SetTierLocalSize(2 * gib)
	body = get()
	for _, want := range []string{
		`id="cluster"`, "3 up", "asked the owning replica 6 times: 1 failed over", "3.0 MiB received from replicas",
		`id="shared-store"`, "2 requests", "1 unanswered or 5xx", "3.00 ms mean to the answer", "2.0 GiB of copies",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
