package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
	"golang.org/x/net/html"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// statusScene is a mirror that has done some work, and what its status page
// must show about it.
type statusScene struct {
	url      string // the mirror with the status page
	upstream string // its default upstream's name
	repo     string // a repository it holds
	pushed   string // a repository pushed to it
	down     string // an upstream that refuses connections
	ratio    string // its hit ratio, from its own counters
}

// downUpstream is the name of the scene's upstream that refuses connections.
const downUpstream = "registry.down.example"

// newStatusScene runs wharf, as serve builds it, in front of a real
// registry behind a Faulty that announces a pull budget and fails one
// repository, and of a second upstream whose port refuses connections. It
// pulls an image twice (a miss, then hits), fails the broken repository
// twice, pushes an image of the site's own, and asks the refusing upstream
// until its breaker marks it down and a miss fails fast.
func newStatusScene(t *testing.T) statusScene {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "app/web:v1", upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		f := upstreamtest.Fault{Header: http.Header{
			"Ratelimit-Limit":     {"100;w=21600"},
			"Ratelimit-Remaining": {"76;w=21600"},
		}}
		if strings.Contains(r.URL.Path, "/app/broken/") {
			f.Status = http.StatusServiceUnavailable
		}
		return f
	})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // its port now refuses connections

	log := logrus.New() // at info, as serve: a client's bad request is grouped too
	log.SetOutput(io.Discard)
	mm := startMulti(t, multiOpts{
		def:    namedUpstream{url: faulty.URL},
		named:  []namedUpstream{{name: downUpstream, url: gone.URL}},
		auth:   &proxy.AuthOptions{AnonymousPush: true},
		log:    log,
		status: true,
	})

	for range 2 {
		if _, err := remote.Image(mm.ref(t, "app/web:v1"), client(t)...); err != nil {
			t.Fatalf("pull app/web:v1: %v", err)
		}
	}
	// Plain GETs, not ggcr's retrying pulls: two failures, not the three
	// in a row that mark the upstream down.
	for range 2 {
		if resp := get(t, mm.URL+"/v2/app/broken/manifests/v1"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("app/broken: %d, want 502", resp.StatusCode)
		}
	}
	if err := remote.Write(mm.ref(t, "site/tool:v1"), upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest), client(t)...); err != nil {
		t.Fatalf("push site/tool:v1: %v", err)
	}
	// Three refused connections mark the upstream down; the next misses
	// fail at once with 503.
	for i := range 5 {
		want := http.StatusBadGateway
		if i >= 3 {
			want = http.StatusServiceUnavailable
		}
		if resp := get(t, mm.URL+"/v2/"+downUpstream+"/team/api/manifests/v2"); resp.StatusCode != want {
			t.Fatalf("miss %d on the refusing upstream: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp := get(t, mm.URL+"/v2/Bad_Name/manifests/v1"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an invalid name: %d, want 400", resp.StatusCode)
	}

	var hits, misses float64
	fams, err := mm.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case metrics.NameCacheHits:
				hits += mt.GetCounter().GetValue()
			case metrics.NameCacheMisses:
				misses += mt.GetCounter().GetValue()
			}
		}
	}
	if hits == 0 || misses == 0 {
		t.Fatalf("hits %v, misses %v: want both", hits, misses)
	}
	def := mm.clients[0].Name()
	return statusScene{
		url: mm.URL, upstream: def, repo: def + "/app/web", pushed: def + "/site/tool", down: downUpstream,
		ratio: fmt.Sprintf("%.1f%%", 100*hits/(hits+misses)),
	}
}

// check asserts what a person must see on the page, given its DOM.
func (s statusScene) check(t *testing.T, doc *html.Node) {
	t.Helper()
	for id, want := range map[string][]string{
		"hit-ratio":              {s.ratio, "requests answered from the cache without asking an upstream ÷ all manifest, tag and blob requests"},
		"stored":                 {"blobs and manifests", "no size cap"},
		"images":                 {"tags in 2 repositories"},
		"saved":                  {"served from the cache"},
		"upstream-" + s.upstream: {"degraded", "76 of 100 pulls left", "503 Service Unavailable"},
		"upstream-" + s.down:     {"down", "down since ", "next probe ", "connection refused"},
		"repositories":           {"app/web", "site/tool"}, // as clients pull them from the default upstream
		"repo-" + s.pushed:       {"pushed"},
		"errors": {
			"upstream " + s.down + " is down since ", "(connection refused)", s.down + "/team/api",
			"upstream " + s.upstream + " failed: 503 Service Unavailable", s.upstream + "/app/broken",
			"client sent an invalid repository name",
		},
	} {
		text := textByID(doc, id)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("#%s does not show %q: %q", id, w, text)
			}
		}
	}
	if row := textByID(doc, "repo-"+s.repo); strings.Contains(row, "pushed") {
		t.Errorf("the mirrored repository is marked pushed: %q", row)
	}
	// Repeats are one row with a count: two 503s on app/broken, three
	// refused connections then two fast failures on team/api.
	for _, c := range []struct{ words, count string }{
		{"upstream " + s.upstream + " failed: 503 Service Unavailable", "2"},
		{"upstream " + s.down + " did not answer (connection refused)", "3"},
		{"upstream " + s.down + " is down since ", "2"},
	} {
		if got := errorCount(doc, c.words); got != c.count {
			t.Errorf("error row %q counts %q, want %s", c.words, got, c.count)
		}
	}
}

// errorCount is the Count cell of the #errors row whose text has words.
func errorCount(doc *html.Node, words string) string {
	var count string
	walk(doc, func(n *html.Node) {
		if count != "" || n.Type != html.ElementNode || n.Data != "tr" || !strings.Contains(textOf(n), words) {
			return
		}
		var cells []string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, textOf(c))
			}
		}
		if len(cells) > 1 {
			count = cells[1]
		}
	})
	return count
}

func TestStatusPageAfterPulls(t *testing.T) {
	s := newStatusScene(t)
	resp := get(t, s.url+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := html.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	s.check(t, doc)
}

// TestStatusPageInBrowser renders the page in headless Chromium: what a
// person sees is the DOM after a real browser parsed it (under the page's
// Content-Security-Policy), and a screenshot. Set WHARF_SCREENSHOT_DIR to
// keep the screenshot.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := findChromium()
	if browser == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)")
	}
	s := newStatusScene(t)

	dom := runBrowser(t, browser, "--dump-dom", s.url+"/")
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	if title := textOf(find(doc, "title")); title != "wharf — mirror status" {
		t.Errorf("title %q; DOM:\n%s", title, dom)
	}
	s.check(t, doc)

	dir := os.Getenv("WHARF_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "status-page.png")
	os.Remove(shot)
	runBrowser(t, browser, "--screenshot="+shot, "--window-size=1200,1500", s.url+"/")
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v (%d bytes)", shot, err, fi.Size())
	}
	t.Logf("screenshot: %s", shot)
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runBrowser runs one headless Chromium command with its own profile and
// returns its standard output. Chromium runs as root in CI, hence
// --no-sandbox.
func runBrowser(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-extensions", "--disable-crash-reporter", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// textByID is the text of the element with id, spaces collapsed; "" if none.
func textByID(n *html.Node, id string) string {
	var hit *html.Node
	walk(n, func(n *html.Node) {
		for _, a := range n.Attr {
			if hit == nil && a.Key == "id" && a.Val == id {
				hit = n
			}
		}
	})
	return textOf(hit)
}

func find(n *html.Node, tag string) *html.Node {
	var hit *html.Node
	walk(n, func(n *html.Node) {
		if hit == nil && n.Type == html.ElementNode && n.Data == tag {
			hit = n
		}
	})
	return hit
}

func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}
