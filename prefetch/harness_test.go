package prefetch_test

import (
	"context"
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
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/prefetch"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
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

// wharf is a mirror in front of a gated registry, built as serve builds
// it: upstream client, cache, prefetcher, proxy, on 127.0.0.1.
type wharf struct {
	reg   *upstreamtest.Registry
	gate  *gate
	up    *upstream.Client
	cache *cache.Cache
	pf    *prefetch.Prefetcher // nil when off
	m     *metrics.Metrics
	host  string
	tr    *http.Transport // the clients'
}

type wharfOpts struct {
	off         bool
	concurrency int
	queue       int
	remember    int
	downAfter   int
}

func newWharf(t *testing.T, o wharfOpts) *wharf {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	g := newGate(t, reg.URL)
	m := metrics.New(prometheus.NewRegistry())
	up, err := upstream.New(upstream.Options{
		URL: g.URL, MaxRetries: -1, Backoff: time.Millisecond, Timeout: 10 * time.Second,
		DownAfter: o.downAfter, ProbeMin: time.Hour, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	c, err := cache.Open(cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{up}, TagTTL: time.Hour, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wharf{reg: reg, gate: g, up: up, cache: c, m: m}
	var pf proxy.Prefetcher // nil: off
	if !o.off {
		w.pf, err = prefetch.New(context.Background(), prefetch.Options{
			Store: c, Upstreams: []prefetch.Upstream{up},
			Concurrency: o.concurrency, Queue: o.queue, Remember: o.remember, Metrics: m,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.pf.Close() }) // before the cache
		pf = w.pf
	}
	h, err := proxy.New(proxy.Options{Store: c, Upstream: up, Metrics: m, Prefetch: pf})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	w.tr = http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		w.tr.CloseIdleConnections()
		srv.CloseClientConnections()
		srv.Close()
	})
	w.host = strings.TrimPrefix(srv.URL, "http://")
	return w
}

func (w *wharf) repo(path string) cache.Repo { return cache.Repo{Upstream: w.up.Name(), Path: path} }

func (w *wharf) ref(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(w.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// getManifest GETs ref's manifest from wharf, as a client resolving it
// does, within 10s (the handler never waits on prefetch).
func (w *wharf) getManifest(t *testing.T, ref string) *remote.Descriptor {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	desc, err := remote.Get(w.ref(t, ref), remote.WithTransport(w.tr), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("GET manifest %s: %v", ref, err)
	}
	return desc
}

// image pulls ref through wharf (lazily: blobs are read when asked).
func (w *wharf) image(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(w.ref(t, ref), remote.WithTransport(w.tr), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// result is wharf_prefetch_blobs_total for result.
func (w *wharf) result(r string) float64 {
	return testutil.ToFloat64(w.m.PrefetchBlobs.WithLabelValues(r))
}

func (w *wharf) queued() float64 { return testutil.ToFloat64(w.m.PrefetchQueued) }

// stored reports whether every digest is in the store.
func (w *wharf) stored(ds []digest.Digest) bool {
	for _, d := range ds {
		if _, ok := w.cache.HasContent(d); !ok {
			return false
		}
	}
	return true
}

// blobsOf lists img's config and layers.
func blobsOf(t *testing.T, img v1.Image) []digest.Digest {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{digest.Digest(cfg.String())}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, digest.Digest(d.String()))
	}
	return out
}

// sizeOf adds up the sizes img's manifest gives its config and layers.
func sizeOf(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// waitFor polls cond until it holds, for at most 15s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(15 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// drain reads r to its end and closes it.
func drain(r io.ReadCloser) (int64, error) {
	defer r.Close()
	return io.Copy(io.Discard, r)
}
