package prefetch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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
	farLatency  time.Duration                           // upstream.Options.FarLatency
	wrap        func(proxy.Prefetcher) proxy.Prefetcher // what proxy is given, around the prefetcher
	full        *atomic.Bool                            // non-nil: what the store's Full says
}

// fullStore is the cache, full when told (cache.TestFullPastTheHighWatermark
// tests the real Full).
type fullStore struct {
	*cache.Cache
	full *atomic.Bool
}

func (s fullStore) Full() bool { return s.full.Load() }

func newWharf(t *testing.T, o wharfOpts) *wharf {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	g := newGate(t, reg.URL)
	m := metrics.New(prometheus.NewRegistry())
	up, err := upstream.New(upstream.Options{
		URL: g.URL, MaxRetries: -1, Backoff: time.Millisecond, Timeout: 10 * time.Second,
		DownAfter: o.downAfter, ProbeMin: time.Hour, Metrics: m, FarLatency: o.farLatency,
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
	var store prefetch.Store = c
	if o.full != nil {
		store = fullStore{c, o.full}
	}
	if !o.off {
		w.pf, err = prefetch.New(context.Background(), prefetch.Options{
			Store: store, Upstreams: []prefetch.Upstream{up},
			Concurrency: o.concurrency, Queue: o.queue, Remember: o.remember, Metrics: m,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.pf.Close() }) // before the cache
		pf = w.pf
		if o.wrap != nil {
			pf = o.wrap(pf)
		}
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
