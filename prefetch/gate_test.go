package prefetch_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// gate stands in front of a real registry and counts the blob GETs it
// passes, by digest, and how many are in flight at once. It injects what
// the registry will not do on demand: holding blob responses open, 429s,
// and 5xx for everything.
type gate struct {
	URL string
	tr  *http.Transport

	mu          sync.Mutex
	gets        map[digest.Digest]int
	inFlight    int
	maxInFlight int
	held        chan struct{} // non-nil: blob GETs wait for it to close
	blobStatus  int           // non-zero: blob GETs are answered with it
	retryAfter  string        // with blobStatus
	failAll     bool          // every request is answered 503
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{gets: map[digest.Digest]int{}, tr: http.DefaultTransport.(*http.Transport).Clone()}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = g.tr
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests the tests cut short
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, rp) }))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		g.tr.CloseIdleConnections()
	})
	t.Cleanup(g.release) // first: held handlers end before the server closes
	g.URL = srv.URL
	return g
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	g.mu.Lock()
	failAll := g.failAll
	blob := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	var held chan struct{}
	var status int
	var retryAfter string
	if blob {
		g.gets[digest.Digest(path.Base(r.URL.Path))]++
		g.inFlight++
		g.maxInFlight = max(g.maxInFlight, g.inFlight)
		held, status, retryAfter = g.held, g.blobStatus, g.retryAfter
	}
	g.mu.Unlock()
	if blob {
		defer func() {
			g.mu.Lock()
			g.inFlight--
			g.mu.Unlock()
		}()
	}
	if failAll {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(status)
		return
	}
	next.ServeHTTP(w, r)
}

// hold makes blob GETs wait until release.
func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = make(chan struct{})
}

// release lets the held blob GETs go on, and later ones pass.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

func (g *gate) set(fn func(g *gate)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn(g)
}

// blobGets returns the blob GETs seen, by digest, and in all.
func (g *gate) blobGets() (map[digest.Digest]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out, n := make(map[digest.Digest]int, len(g.gets)), 0
	for d, c := range g.gets {
		out[d] = c
		n += c
	}
	return out, n
}

func (g *gate) inFlightNow() (now, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight, g.maxInFlight
}
