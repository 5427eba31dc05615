package prefetch_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestDownUpstreamGetsNothing: blobs queued for an upstream marked down
// meanwhile are dropped, not asked, and counted as upstream_down; an image
// handed over while it is down gets nothing queued.
func TestDownUpstreamGetsNothing(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1, downAfter: 1})
	img := upstreamtest.RandomImage(t, 3, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	other := upstreamtest.RandomImage(t, 2, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/other:v1", other)
	n := float64(len(blobsOf(t, img)))

	// The manifest of the second image, fetched while the upstream is up.
	m, err := w.cache.Manifest(t.Context(), w.repo("team/other"), "v1", oci.ServedManifests)
	if err != nil || !m.Fetched {
		t.Fatalf("manifest: %v, fetched %v", err, m != nil && m.Fetched)
	}

	w.gate.hold()
	w.getManifest(t, "team/app:v1")
	waitFor(t, "one blob held, the rest queued", func() bool {
		_, gets := w.gate.blobGets()
		return gets == 1 && w.queued() == n-1
	})
	w.gate.set(func(g *gate) { g.failAll = true })
	if _, err := w.cache.Manifest(t.Context(), w.repo("team/app"), "missing", oci.ServedManifests); err == nil {
		t.Fatal("a manifest GET answered 503 succeeded")
	}
	if w.up.Down() == nil {
		t.Fatal("the upstream is not marked down after a 503 with downAfter 1")
	}
	// Marked down, the held attempt is cut short; the queued ones are
	// dropped.
	waitFor(t, "every blob counted upstream_down", func() bool { return w.result("upstream_down") == n })
	if _, gets := w.gate.blobGets(); gets != 1 {
		t.Errorf("the upstream saw %d blob GETs, want 1 (the one held when it went down)", gets)
	}

	w.pf.Image(w.repo("team/other"), m)
	if got := w.result("upstream_down"); got != n+float64(len(blobsOf(t, other))) {
		t.Errorf("upstream_down = %v after an image handed over while down, want %v", got, n+float64(len(blobsOf(t, other))))
	}
	if q := w.queued(); q != 0 {
		t.Errorf("%v blobs queued for a down upstream", q)
	}
	if _, gets := w.gate.blobGets(); gets != 1 {
		t.Errorf("the upstream saw %d blob GETs, want 1", gets)
	}
	if got := w.result("fetched") + w.result("failed"); got != 0 {
		t.Errorf("fetched+failed = %v, want 0", got)
	}
}

// TestRateLimitedUpstreamStopsPrefetch: after the upstream answers a
// prefetch with 429, the rest of that image is not asked for, and a later
// image gets nothing queued; both count as rate_limited. Clients still
// get their own answers.
func TestRateLimitedUpstreamStopsPrefetch(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	img := upstreamtest.RandomImage(t, 4, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/app:v1", img)
	later := upstreamtest.RandomImage(t, 2, 16<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/later:v1", later)
	n, nl := float64(len(blobsOf(t, img))), float64(len(blobsOf(t, later)))

	w.gate.set(func(g *gate) { g.blobStatus, g.retryAfter = http.StatusTooManyRequests, "3600" })
	w.getManifest(t, "team/app:v1")
	waitFor(t, "the image counted rate_limited", func() bool { return w.result("rate_limited") == n })
	if _, gets := w.gate.blobGets(); gets != 1 {
		t.Errorf("the upstream saw %d blob GETs, want 1 (the one answered 429)", gets)
	}
	if !w.up.RateLimited() {
		t.Fatal("the upstream client does not say it is rate-limited")
	}

	w.getManifest(t, "team/later:v1")
	waitFor(t, "the later image counted rate_limited as it was handed over", func() bool { return w.result("rate_limited") == n+nl })
	if q := w.queued(); q != 0 {
		t.Errorf("%v blobs queued for a rate-limiting upstream", q)
	}
	if _, gets := w.gate.blobGets(); gets != 1 {
		t.Errorf("the upstream saw %d blob GETs, want still 1", gets)
	}
	if got := w.result("failed") + w.result("fetched"); got != 0 {
		t.Errorf("failed+fetched = %v, want 0", got)
	}
}

// TestConcurrencyBoundPerUpstream: with the upstream holding every blob
// response open, prefetch has at most Concurrency (the default, 8) blob
// GETs in flight; the rest wait in the queue, and all are stored once
// released.
func TestConcurrencyBoundPerUpstream(t *testing.T) {
	w := newWharf(t, wharfOpts{}) // the default concurrency
	img := upstreamtest.RandomImage(t, 12, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/big:v1", img)
	blobs := blobsOf(t, img)

	w.gate.hold()
	w.getManifest(t, "team/big:v1")
	waitFor(t, "8 blobs in flight, the rest queued", func() bool {
		now, _ := w.gate.inFlightNow()
		return now == 8 && w.queued() == float64(len(blobs)-8)
	})
	if got := testutil.ToFloat64(w.m.PrefetchInFlight); got != 8 {
		t.Errorf("in-flight gauge = %v, want 8", got)
	}
	w.gate.release()
	waitFor(t, "every blob stored", func() bool { return w.stored(blobs) })
	waitFor(t, "every blob counted", func() bool { return w.result("fetched") == float64(len(blobs)) })
	if _, most := w.gate.inFlightNow(); most != 8 {
		t.Errorf("at most %d blob GETs were in flight at once, want 8", most)
	}
	gets, _ := w.gate.blobGets()
	for _, d := range blobs {
		if gets[d] != 1 {
			t.Errorf("blob %s asked %d times, want once", d, gets[d])
		}
	}
}

// TestFullQueueDrops: a blob that finds the queue full is dropped and
// counted; the manifest request that handed it over is answered without
// waiting for room.
func TestFullQueueDrops(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1, queue: 2})
	first := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest) // config and a layer
	upstreamtest.Push(t, w.reg, "team/first:v1", first)
	second := upstreamtest.RandomImage(t, 4, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/second:v1", second)

	w.gate.hold()
	w.getManifest(t, "team/first:v1")
	waitFor(t, "the worker held, one blob queued", func() bool {
		_, gets := w.gate.blobGets()
		return gets == 1 && w.queued() == 1
	})
	w.getManifest(t, "team/second:v1") // answered while the worker is held and the queue has one place
	waitFor(t, "4 dropped (5 blobs, 1 place left)", func() bool { return w.result("dropped") == 4 })
	if q := w.queued(); q != 2 {
		t.Errorf("queued = %v, want 2", q)
	}
	w.gate.release()
	waitFor(t, "the queued blobs fetched", func() bool { return w.result("fetched") == 3 })
	if err := validate.Image(w.image(t, "team/second:v1")); err != nil {
		t.Errorf("pull of the image whose blobs were dropped: %v", err)
	}
}

// TestIndexTriggersNothingUntilThePlatform: an index queues nothing (the
// client's platform is not known yet); the child the client then takes
// by digest queues its own blobs, and only those are fetched.
func TestIndexTriggersNothingUntilThePlatform(t *testing.T) {
	w := newWharf(t, wharfOpts{concurrency: 1})
	busy := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, w.reg, "team/busy:v1", busy)
	idx := upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex)
	upstreamtest.PushIndex(t, w.reg, "team/multi:v1", idx)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}

	// The one worker held on another image's blob: whatever is queued
	// from here on stays in the queue, where the gauge shows it.
	w.gate.hold()
	w.getManifest(t, "team/busy:v1")
	waitFor(t, "the worker held, one blob queued", func() bool {
		_, gets := w.gate.blobGets()
		return gets == 1 && w.queued() == 1
	})
	w.getManifest(t, "team/multi:v1")
	if q := w.queued(); q != 1 {
		t.Errorf("queued = %v after an index, want still 1", q)
	}
	child := im.Manifests[1]
	childImg, err := idx.Image(child.Digest)
	if err != nil {
		t.Fatal(err)
	}
	mine := blobsOf(t, childImg)
	w.getManifest(t, "team/multi@"+child.Digest.String())
	waitFor(t, "the platform's blobs queued", func() bool { return w.queued() == float64(1+len(mine)) })
	w.gate.release()
	waitFor(t, "the platform's blobs stored", func() bool { return w.stored(mine) })
	waitFor(t, "every blob counted", func() bool { return w.result("fetched") == float64(2+len(mine)) })
	gets, total := w.gate.blobGets()
	if total != 2+len(mine) {
		t.Errorf("the upstream saw %d blob GETs, want %d: the busy image's 2 and the platform's", total, 2+len(mine))
	}
	for _, d := range mine {
		if gets[d] != 1 {
			t.Errorf("platform blob %s asked %d times, want once", d, gets[d])
		}
	}
}

// TestNearUpstreamIsNotPrefetched: from an upstream that answers within
// FarLatency nothing is prefetched (every blob counted near_upstream, none
// asked), and clients still get every blob they ask for; from one that
// answers slower, the same image is prefetched whole.
func TestNearUpstreamIsNotPrefetched(t *testing.T) {
	for _, tt := range []struct {
		name       string
		farLatency time.Duration
		near       bool
	}{
		{"near", time.Hour, true},       // any answer on 127.0.0.1 is faster
		{"far", time.Nanosecond, false}, // and none this fast
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWharf(t, wharfOpts{farLatency: tt.farLatency})
			img := upstreamtest.RandomImage(t, 3, 16<<10, upstreamtest.OCIManifest)
			upstreamtest.Push(t, w.reg, "team/app:v1", img)
			blobs := blobsOf(t, img)
			n := float64(len(blobs))

			w.getManifest(t, "team/app:v1")
			if !tt.near {
				waitFor(t, "the image prefetched", func() bool { return w.result("fetched") == n && w.stored(blobs) })
				return
			}
			waitFor(t, "every blob counted near_upstream", func() bool { return w.result("near_upstream") == n })
			if _, gets := w.gate.blobGets(); gets != 0 {
				t.Errorf("a near upstream saw %d blob GETs before any client asked, want 0", gets)
			}
			if q := w.queued(); q != 0 {
				t.Errorf("%v blobs queued for a near upstream", q)
			}
			if err := validate.Image(w.image(t, "team/app:v1")); err != nil {
				t.Fatalf("a client's pull from a near upstream: %v", err)
			}
			if _, gets := w.gate.blobGets(); gets != int(n) {
				t.Errorf("the client's pull cost %d blob GETs, want %v, one each", gets, n)
			}
		})
	}
}
