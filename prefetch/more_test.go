package prefetch_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/prefetch"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestHeadArmsTheNextGet: a HEAD that made the cache fetch a manifest
// prefetches nothing by itself (a digest poller never pulls); the next
// GET of it, by digest and a cache hit, prefetches it (containerd HEADs a
// tag, then GETs its digest). A HEAD-only client's image is never asked
// for.
func TestHeadArmsTheNextGet(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	img := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	polled := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/polled:v1", polled)
	blobs := blobsOf(t, img)

	for _, ref := range []string{"team/polled:v1", "team/app:v1"} {
		if _, err := remote.Head(w.ref(t, ref), remote.WithTransport(w.tr)); err != nil {
			t.Fatal(err)
		}
	}
	if q, _ := w.gate.blobGets(); len(q) != 0 || w.queued() != 0 {
		t.Fatalf("HEADs alone queued %v blobs and asked for %v", w.queued(), q)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	w.getManifest(t, "team/app@"+dg.String())
	waitFor(t, "the image's blobs stored after HEAD then GET", func() bool { return w.stored(blobs) })
	waitFor(t, "the fetches counted", func() bool { return w.result("fetched") == float64(len(blobs)) })
	if _, total := w.gate.blobGets(); total != len(blobs) {
		t.Errorf("the upstream saw %d blob GETs, want %d: the HEAD-only image's too", total, len(blobs))
	}
}

// TestUsedSetIsBounded: only the last Remember digests prefetch fetched
// are remembered, so a pull of more counts only those as used.
func TestUsedSetIsBounded(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1, remember: 2})
	img := upstreamtest.RandomImage(t, 4, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	w.getManifest(t, "team/app:v1")
	waitFor(t, "the image prefetched", func() bool { return w.result("fetched") == 5 })
	if err := validate.Image(w.image(t, "team/app:v1")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(w.m.PrefetchUsed); got != 2 {
		t.Errorf("used = %v, want 2 (the digests remembered)", got)
	}
}

// TestCloseStopsWorkersOnHeldFills: Close returns while prefetch's fills
// are held at the upstream (they are the cache's, and go on), and an image
// handed over afterwards is ignored.
func TestCloseStopsWorkersOnHeldFills(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 2})
	img := upstreamtest.RandomImage(t, 3, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	w.gate.hold()
	w.getManifest(t, "team/app:v1")
	waitFor(t, "two blobs held", func() bool { now, _ := w.gate.inFlightNow(); return now == 2 })
	closed := make(chan error, 1)
	go func() { closed <- w.pf.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the held fills")
	}
	if got := testutil.ToFloat64(w.m.PrefetchInFlight); got != 0 {
		t.Errorf("in flight after Close = %v, want 0", got)
	}
	if q := w.queued(); q != 0 {
		t.Errorf("queued after Close = %v, want 0", q)
	}
	m, err := w.cache.Manifest(t.Context(), w.repo("team/app"), "v1", oci.ServedManifests)
	if err != nil {
		t.Fatal(err)
	}
	m.Fetched = true
	w.pf.Image(w.repo("team/app"), m)
	if q := w.queued(); q != 0 {
		t.Errorf("an image handed over after Close queued %v blobs", q)
	}
	w.gate.release()
}

// TestBoundAndStopArePerUpstream: each upstream has its own lane: its
// own Concurrency of fills in flight while another's are held too, and a
// rate-limiting upstream stops only its own prefetch.
func TestBoundAndStopArePerUpstream(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	type side struct {
		reg  *upstreamtest.Registry
		gate *gate
		up   *upstream.Client
	}
	var sides [2]side
	var origins []cache.Origin
	var lanes []prefetch.Upstream
	for i := range sides {
		reg := upstreamtest.NewRegistry(t)
		g := newGate(t, reg.URL)
		up, err := upstream.New(upstream.Options{URL: g.URL, MaxRetries: -1, ProbeMin: time.Hour, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { up.Close() })
		sides[i] = side{reg, g, up}
		origins = append(origins, up)
		lanes = append(lanes, up)
	}
	c, err := cache.Open(cache.Options{Dir: t.TempDir(), Origins: origins, TagTTL: time.Hour, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p, err := prefetch.New(context.Background(), prefetch.Options{Store: c, Upstreams: lanes, Concurrency: 2, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	hand := func(s side, ref string) {
		t.Helper()
		repo := cache.Repo{Upstream: s.up.Name(), Path: "team/app"}
		man, err := c.Manifest(t.Context(), repo, ref, oci.ServedManifests)
		if err != nil || !man.Fetched {
			t.Fatalf("manifest %s: %v", ref, err)
		}
		p.Image(repo, man)
	}
	for i, s := range sides {
		upstreamtest.Push(t, s.reg, "team/app:v1", upstreamtest.RandomImage(t, 3, 8<<10, upstreamtest.OCIManifest))
		s.gate.hold()
		hand(s, "v1")
		waitFor(t, "two blobs in flight at this upstream", func() bool { now, _ := s.gate.inFlightNow(); return now == 2 })
		if got := testutil.ToFloat64(m.PrefetchInFlight); got != float64(2*(i+1)) {
			t.Errorf("in flight = %v with %d upstreams held, want %d", got, i+1, 2*(i+1))
		}
	}
	for _, s := range sides {
		s.gate.release()
	}
	waitFor(t, "both images prefetched", func() bool {
		return testutil.ToFloat64(m.PrefetchBlobs.WithLabelValues("fetched")) == 8
	})
	for _, s := range sides {
		if _, most := s.gate.inFlightNow(); most != 2 {
			t.Errorf("at most %d blob GETs in flight at one upstream, want 2", most)
		}
	}

	// The first upstream limits wharf; the second still gets its blobs.
	limited, open := sides[0], sides[1]
	limited.gate.set(func(g *gate) { g.blobStatus, g.retryAfter = 429, "3600" })
	for _, s := range sides {
		upstreamtest.Push(t, s.reg, "team/app:v2", upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest))
	}
	hand(limited, "v2")
	waitFor(t, "the limited upstream's image counted", func() bool {
		return testutil.ToFloat64(m.PrefetchBlobs.WithLabelValues("rate_limited")) == 2
	})
	hand(open, "v2")
	waitFor(t, "the other upstream's image fetched", func() bool {
		return testutil.ToFloat64(m.PrefetchBlobs.WithLabelValues("fetched")) == 10
	})
	if !limited.up.RateLimited() || open.up.RateLimited() {
		t.Errorf("rate-limited: %v and %v, want true and false", limited.up.RateLimited(), open.up.RateLimited())
	}
}

// TestForeignLayersAreSkipped: a foreign (non-distributable) layer, which
// clients fetch from its own URLs, is never asked of the upstream.
func TestForeignLayersAreSkipped(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	im, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	desc := func(d v1.Descriptor) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
	}
	foreign := ocispec.Descriptor{MediaType: oci.DockerForeignLayer, Digest: digest.FromString("elsewhere"), Size: 9,
		URLs: []string{"https://foreign.example/layer"}}
	body, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(im.Config),
		Layers: []ocispec.Descriptor{foreign, desc(im.Layers[0])}, // first: a worker taking it would do so first
	})
	if err != nil {
		t.Fatal(err)
	}
	w.pf.Image(w.repo("team/app"), &cache.Manifest{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(body), Size: int64(len(body))},
		Body:       body, Fetched: true,
	})
	waitFor(t, "the config and the layer fetched", func() bool { return w.result("fetched") == 2 })
	if gets, total := w.gate.blobGets(); gets[foreign.Digest] != 0 || total != 2 {
		t.Errorf("the upstream saw %d GETs of the foreign layer, %d blob GETs in all; want 0 and 2", gets[foreign.Digest], total)
	}
	if got := w.result("failed"); got != 0 {
		t.Errorf("failed = %v, want 0", got)
	}
}
