package prefetch_test

import (
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPrefetchStoresTheImageUnasked: after a client GETs a cold image's
// manifest, its config and every layer become stored without the client
// asking, each fetched from the upstream once; the client's pull then
// reads them from the store and counts them as used, once each.
func TestPrefetchStoresTheImageUnasked(t *testing.T) {
	w := newWharf(t, wharfOpts{})
	img := upstreamtest.RandomImage(t, 4, 32<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	blobs := blobsOf(t, img)

	w.getManifest(t, "team/app:v1")
	waitFor(t, "the image's blobs stored", func() bool { return w.stored(blobs) })
	waitFor(t, "the fetches counted", func() bool { return w.result("fetched") == float64(len(blobs)) })
	gets, total := w.gate.blobGets()
	if total != len(blobs) {
		t.Errorf("the upstream saw %d blob GETs, want %d (one per blob)", total, len(blobs))
	}
	for _, d := range blobs {
		if gets[d] != 1 {
			t.Errorf("blob %s was asked of the upstream %d times, want once", d, gets[d])
		}
	}
	size := float64(sizeOf(t, img))
	if got := testutil.ToFloat64(w.m.PrefetchBytes.WithLabelValues("fetched")); got != size {
		t.Errorf("fetched bytes = %v, want %v", got, size)
	}
	if got := testutil.ToFloat64(w.m.CacheMisses.WithLabelValues("blob")); got != 0 {
		t.Errorf("blob misses = %v before any client read a blob, want 0: a prefetch fill is no client's miss", got)
	}

	for range 2 { // the second pull finds nothing more to count
		if err := validate.Image(w.image(t, "team/app:v1")); err != nil {
			t.Fatalf("pull after prefetch: %v", err)
		}
	}
	if _, after := w.gate.blobGets(); after != total {
		t.Errorf("the pulls asked the upstream for %d more blobs, want 0", after-total)
	}
	if got := testutil.ToFloat64(w.m.PrefetchUsed); got != float64(len(blobs)) {
		t.Errorf("used blobs = %v, want %d", got, len(blobs))
	}
	if got := testutil.ToFloat64(w.m.PrefetchUsedBytes); got != size {
		t.Errorf("used bytes = %v, want %v", got, size)
	}
	if q, in := w.queued(), testutil.ToFloat64(w.m.PrefetchInFlight); q != 0 || in != 0 {
		t.Errorf("queued %v, in flight %v after the end; want 0, 0", q, in)
	}
}

// TestPullDuringPrefetchAsksOnce: a client pulling while prefetch's fills
// are held at the upstream joins them and gets correct bytes; the upstream
// is asked once per blob.
func TestPullDuringPrefetchAsksOnce(t *testing.T) {
	w := newWharf(t, wharfOpts{})
	img := upstreamtest.RandomImage(t, 5, 64<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	blobs := blobsOf(t, img)

	w.gate.hold()
	w.getManifest(t, "team/app:v1")
	waitFor(t, "prefetch's GETs at the upstream", func() bool { _, n := w.gate.blobGets(); return n == len(blobs) })
	pulled := make(chan error, 1)
	go func() { pulled <- validate.Image(w.image(t, "team/app:v1")) }()
	// The client is waiting on a fill: its first blob request is in.
	waitFor(t, "the client's first blob request", func() bool {
		return testutil.ToFloat64(w.m.CacheMisses.WithLabelValues("blob")) > 0 // prefetch counts none
	})
	w.gate.release()
	if err := <-pulled; err != nil {
		t.Fatalf("pull during prefetch: %v", err)
	}
	waitFor(t, "prefetch's fills counted", func() bool { return w.result("fetched") == float64(len(blobs)) })
	gets, total := w.gate.blobGets()
	for _, d := range blobs {
		if gets[d] != 1 {
			t.Errorf("blob %s was asked of the upstream %d times, want once", d, gets[d])
		}
	}
	if total != len(blobs) {
		t.Errorf("the upstream saw %d blob GETs, want %d", total, len(blobs))
	}
	if got := testutil.ToFloat64(w.m.PrefetchUsed); got != float64(len(blobs)) {
		t.Errorf("used blobs = %v, want %d: the client read each blob prefetch was fetching", got, len(blobs))
	}
}

// TestQueuedBlobAClientAsksForIsFetchedOnce: a client asking for a blob
// still in prefetch's queue starts its fill itself at once; the worker
// later finds it stored or filling and leaves it (held), so the upstream
// is asked once.
func TestQueuedBlobAClientAsksForIsFetchedOnce(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	img := upstreamtest.RandomImage(t, 3, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	blobs := blobsOf(t, img)

	w.gate.hold()
	w.getManifest(t, "team/app:v1")
	waitFor(t, "the one worker held, the rest queued", func() bool {
		_, n := w.gate.blobGets()
		return n == 1 && w.queued() == float64(len(blobs)-1)
	})
	layers, err := w.image(t, "team/app:v1").Layers()
	if err != nil {
		t.Fatal(err)
	}
	last := layers[len(layers)-1] // queued behind the config and the first layers
	var wg sync.WaitGroup
	wg.Add(1)
	var readErr error
	go func() {
		defer wg.Done()
		rc, err := last.Compressed()
		if err == nil {
			_, err = drain(rc)
		}
		readErr = err
	}()
	waitFor(t, "the client's fill at the upstream", func() bool { _, n := w.gate.blobGets(); return n == 2 })
	w.gate.release()
	wg.Wait()
	if readErr != nil {
		t.Fatalf("client read of a queued blob: %v", readErr)
	}
	waitFor(t, "every blob taken up", func() bool {
		return w.result("fetched")+w.result("held") == float64(len(blobs))
	})
	if got := w.result("held"); got < 1 {
		t.Errorf("held = %v, want at least 1 (the blob the client fetched)", got)
	}
	gets, _ := w.gate.blobGets()
	for _, d := range blobs {
		if gets[d] != 1 {
			t.Errorf("blob %s was asked of the upstream %d times, want once", d, gets[d])
		}
	}
	if !w.stored(blobs) {
		t.Error("not every blob is stored")
	}
}

// TestWarmImageCostsNothing: an image manifest fetched while every blob
// it names is stored sends prefetch to the upstream for nothing, and
// counts no cache hit.
func TestWarmImageCostsNothing(t *testing.T) {
	w := newWharf(t, wharfOpts{})
	img := upstreamtest.RandomImage(t, 3, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	upstreamtest.Push(t, w.reg, "team/copy:v1", img)
	blobs := blobsOf(t, img)
	w.getManifest(t, "team/app:v1")
	waitFor(t, "the first image prefetched", func() bool { return w.result("fetched") == float64(len(blobs)) })
	_, before := w.gate.blobGets()
	hits := testutil.ToFloat64(w.m.CacheHits.WithLabelValues("blob"))

	w.getManifest(t, "team/copy:v1") // fetched: a tag of a repository wharf never saw
	waitFor(t, "the second image's blobs found held", func() bool { return w.result("held") == float64(len(blobs)) })
	if _, after := w.gate.blobGets(); after != before {
		t.Errorf("prefetch of a warm image asked the upstream for %d blobs, want 0", after-before)
	}
	if got := testutil.ToFloat64(w.m.CacheHits.WithLabelValues("blob")); got != hits {
		t.Errorf("blob hits went from %v to %v: prefetch's look at the store is not a client's hit", hits, got)
	}
}

// TestPrefetchOff: with no prefetcher, a manifest GET fetches no blob;
// the client's own pull asks for each once and no prefetch is counted.
func TestPrefetchOff(t *testing.T) {
	w := newWharf(t, wharfOpts{off: true})
	img := upstreamtest.RandomImage(t, 3, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	w.getManifest(t, "team/app:v1")
	if _, n := w.gate.blobGets(); n != 0 {
		t.Errorf("%d blob GETs after a manifest GET, want 0", n)
	}
	if err := validate.Image(w.image(t, "team/app:v1")); err != nil {
		t.Fatal(err)
	}
	gets, _ := w.gate.blobGets()
	for _, d := range blobsOf(t, img) {
		if gets[d] != 1 {
			t.Errorf("blob %s asked %d times, want once", d, gets[d])
		}
	}
	for _, r := range []string{"fetched", "held", "dropped", "failed", "upstream_down", "rate_limited"} {
		if got := w.result(r); got != 0 {
			t.Errorf("prefetch %s = %v with prefetch off", r, got)
		}
	}
}
