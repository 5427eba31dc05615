package prefetch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// fetchedManifest is a manifest of body as the cache hands over one it
// fetched.
func fetchedManifest(t *testing.T, mediaType string, body any) *cache.Manifest {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return &cache.Manifest{
		Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))},
		Body:       b, Fetched: true,
	}
}

// TestArtifactsAreNotPrefetched: a referrer (a manifest with a subject:
// a signature, an SBOM) and an artifact (a config that is no image's)
// queue nothing, though their blobs are in the upstream; an image handed
// over after them is fetched, by the one worker, alone.
func TestArtifactsAreNotPrefetched(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	sig := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:sig", sig)
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	ds := blobsOf(t, sig)
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: ds[0], Size: 1}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ds[1], Size: 1}
	v2 := specs.Versioned{SchemaVersion: 2}
	for _, m := range []ocispec.Manifest{
		{Versioned: v2, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer},
			Subject: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("signed"), Size: 2}},
		{Versioned: v2, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/spdx+json",
			Config: ocispec.Descriptor{MediaType: "application/vnd.example.sbom.config+json", Digest: ds[0], Size: 1},
			Layers: []ocispec.Descriptor{layer}},
	} {
		w.pf.Image(w.repo("team/app"), fetchedManifest(t, ocispec.MediaTypeImageManifest, m))
	}
	mine := blobsOf(t, img)
	m, err := w.cache.Manifest(t.Context(), w.repo("team/app"), "v1", oci.ServedManifests)
	if err != nil {
		t.Fatal(err)
	}
	w.pf.Image(w.repo("team/app"), m)
	waitFor(t, "the image fetched", func() bool { return w.stored(mine) && w.result("fetched") == float64(len(mine)) })
	if gets, total := w.gate.blobGets(); total != len(mine) {
		t.Errorf("the upstream saw %d blob GETs (%v), want %d: the artifacts' blobs were asked for", total, gets, len(mine))
	}
}

// TestOneManifestFetchManyClientsQueuesOnce: clients sharing one manifest
// fetch are each handed it as fetched; its blobs are queued once, the
// others counted held, and the upstream asked for each once.
func TestOneManifestFetchManyClientsQueuesOnce(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	img := upstreamtest.RandomImage(t, 3, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	blobs := blobsOf(t, img)
	m, err := w.cache.Manifest(t.Context(), w.repo("team/app"), "v1", oci.ServedManifests)
	if err != nil || !m.Fetched {
		t.Fatalf("manifest: %v", err)
	}
	w.gate.hold()
	w.pf.Image(w.repo("team/app"), m)
	waitFor(t, "the worker held, the rest queued", func() bool {
		_, n := w.gate.blobGets()
		return n == 1 && w.queued() == float64(len(blobs)-1)
	})
	for range 2 {
		w.pf.Image(w.repo("team/app"), m)
	}
	if q, held := w.queued(), w.result("held"); q != float64(len(blobs)-1) || held != float64(2*len(blobs)) {
		t.Errorf("queued %v, held %v after 3 clients; want %d, %d", q, held, len(blobs)-1, 2*len(blobs))
	}
	w.gate.release()
	waitFor(t, "the image fetched", func() bool { return w.result("fetched") == float64(len(blobs)) })
	gets, _ := w.gate.blobGets()
	for _, d := range blobs {
		if gets[d] != 1 {
			t.Errorf("blob %s asked %d times, want once", d, gets[d])
		}
	}
}

// TestCloseLeavesNothingQueued: images handed over while Close runs
// queue nothing after it drained the queues: the gauge ends at 0.
func TestCloseLeavesNothingQueued(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1, queue: 1 << 16})
	w.gate.hold()
	image := func(i, j int) *cache.Manifest {
		cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString(fmt.Sprint("config", i, j)), Size: 1}
		return fetchedManifest(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg,
		})
	}
	closing := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 2000 {
				w.pf.Image(w.repo("team/app"), image(i, j))
				select {
				case <-closing:
					if j%50 == 49 {
						return
					}
				default:
				}
			}
		}()
	}
	waitFor(t, "blobs queued", func() bool { return w.queued() > 8 })
	w.pf.Close()
	close(closing)
	wg.Wait()
	if q := w.queued(); q != 0 {
		t.Errorf("queued = %v after Close, want 0", q)
	}
}

// slowImage holds Image until release is closed.
type slowImage struct {
	proxy.Prefetcher
	release chan struct{}
}

func (s slowImage) Image(repo cache.Repo, m *cache.Manifest) {
	<-s.release
	s.Prefetcher.Image(repo, m)
}

// TestManifestAnsweredBeforePrefetch: the client has its manifest while
// the prefetcher is still handed it.
func TestManifestAnsweredBeforePrefetch(t *testing.T) {
	release := make(chan struct{})
	w := newWharf(t, wharfOpts{wrap: func(p proxy.Prefetcher) proxy.Prefetcher { return slowImage{p, release} }})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.host+"/v2/team/app/manifests/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := w.tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("manifest GET while Image is held: %v", err)
	}
	if _, err := drain(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest GET while Image is held: %s, %v", resp.Status, err)
	}
	close(release)
	waitFor(t, "the image fetched", func() bool { return w.result("fetched") == float64(len(blobsOf(t, img))) })
}

// TestSchema1UsedBytes: a schema 1 manifest gives no sizes; the fill's
// own size is what the used count adds when a client reads the layer.
func TestSchema1UsedBytes(t *testing.T) {
	w := newWharf(t, wharfOpts{})
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	d := digest.Digest(h.String())
	w.pf.Image(w.repo("team/app"), fetchedManifest(t, oci.DockerSchema1, map[string]any{
		"schemaVersion": 1, "name": "team/app", "tag": "v1", "fsLayers": []map[string]any{{"blobSum": d}},
	}))
	waitFor(t, "the layer fetched", func() bool { return w.result("fetched") == 1 })
	resp, err := w.tr.RoundTrip(mustGet(t, "http://"+w.host+"/v2/team/app/blobs/"+d.String()))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := drain(resp.Body); err != nil || n != size {
		t.Fatalf("client read %d bytes, %v; want %d", n, err, size)
	}
	if got := testutil.ToFloat64(w.m.PrefetchUsedBytes); got != float64(size) {
		t.Errorf("used bytes = %v, want %d", got, size)
	}
}

func mustGet(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestFullCacheStopsPrefetch: past its high watermark the cache takes no
// prefetch: an image handed over is counted cache_full and nothing is
// asked; the client's own pull still works. Below it, prefetch goes on.
func TestFullCacheStopsPrefetch(t *testing.T) {
	var full atomic.Bool
	full.Store(true)
	w := newWharf(t, wharfOpts{full: &full})
	img := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	later := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/later:v1", later)
	n := float64(len(blobsOf(t, img)))

	w.getManifest(t, "team/app:v1")
	waitFor(t, "the image counted cache_full", func() bool { return w.result("cache_full") == n })
	if _, total := w.gate.blobGets(); total != 0 {
		t.Errorf("the upstream saw %d blob GETs with the cache full, want 0", total)
	}
	full.Store(false)
	w.getManifest(t, "team/later:v1")
	waitFor(t, "the later image fetched", func() bool { return w.result("fetched") == float64(len(blobsOf(t, later))) })
}
