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

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// statusScene is a mirror that has done some work, and what its status page
// must show about it.
type statusScene struct {
	url      string // the mirror with the status page
	upstream string // its upstream's name
	repo     string // a repository it holds
	ratio    string // its hit ratio, from its own counters
}

// newStatusScene pushes an image to a real registry behind a Faulty that
// announces a pull budget and fails one repository, pulls the image through
// wharf twice (a miss, then hits) and the failing one once.
//
// startMirror's handler has no status page, so the page is served by a
// second handler over the same store, upstream and metrics, with the
// options cmd/wharf/serve.go sets.
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
	m := startMirror(t, faulty.URL, mirrorOpts{retries: -1})

	recent := proxy.NewRecentErrors(10)
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.AddHook(recent)
	h, err := proxy.New(proxy.Options{
		Store: m.Cache, Upstream: m.up, Metrics: m.Metrics, Logger: log,
		Gatherer: m.Registry, Status: m.Cache, RecentErrors: recent,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sm := *m
	sm.URL, sm.Host = srv.URL, srv.Listener.Addr().String()

	pullDigest(t, &sm, "app/web:v1")
	pullDigest(t, &sm, "app/web:v1")
	if _, err := remote.Image(sm.ref(t, "app/broken:v1"), client(t)...); err == nil {
		t.Fatal("app/broken pulled, want a failure")
	}

	var hits, misses float64
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "wharf_cache_hits_total":
				hits += mt.GetCounter().GetValue()
			case "wharf_cache_misses_total":
				misses += mt.GetCounter().GetValue()
			}
		}
	}
	if hits == 0 || misses == 0 {
		t.Fatalf("hits %v, misses %v: want both", hits, misses)
	}
	return statusScene{
		url: srv.URL, upstream: m.up.Name(), repo: m.up.Name() + "/app/web",
		ratio: fmt.Sprintf("%.1f%%", 100*hits/(hits+misses)),
	}
}

// check asserts what a person must see on the page, given its DOM.
func (s statusScene) check(t *testing.T, doc *html.Node) {
	t.Helper()
	for id, want := range map[string][]string{
		"hit-ratio":    {s.ratio},
		"stored":       {"blobs and manifests", "no size cap"},
		"images":       {"tags in 1 repositories"},
		"saved":        {"served from the cache"},
		"upstreams":    {s.upstream, "degraded", "76 of 100 pulls left"},
		"repositories": {s.repo},
		"errors":       {"app/broken", "request failed"},
	} {
		text := textByID(doc, id)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("#%s does not show %q: %q", id, w, text)
			}
		}
	}
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
	runBrowser(t, browser, "--screenshot="+shot, "--window-size=1200,900", s.url+"/")
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
