package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// waitUsage waits until the store's usage is at most limit.
func waitUsage(t *testing.T, m *mirror, limit int64) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		used, _ := m.Cache.Usage()
		if used <= limit {
			return used
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache holds %d bytes, cap %d: eviction did not keep up", used, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d)
	}
	return out
}

func TestEvictionKeepsRecentImagesUnderCap(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	const layer = 512 << 10
	const capBytes = 3 << 20 // room for about two images of 2 × 512 KiB
	var imgs []v1.Image
	for i := 0; i < 8; i++ {
		img := upstreamtest.RandomImage(t, 2, layer, upstreamtest.DockerManifest)
		upstreamtest.Push(t, reg, fmt.Sprintf("app/img%d:v1", i), img)
		imgs = append(imgs, img)
	}
	m := startMirror(t, faulty.URL, mirrorOpts{maxSize: capBytes})

	slack := int64(layer + 64<<10) // one blob
	for i := range imgs {
		pullDigest(t, m, fmt.Sprintf("app/img%d:v1", i))
		waitUsage(t, m, capBytes+slack)
	}
	if n := testutil.ToFloat64(m.Metrics.Evictions); n == 0 {
		t.Fatal("nothing was evicted although 4 MiB went through a 3 MiB cache")
	}

	// The most recent image is still a hit; the oldest was evicted.
	faulty.ResetCounts()
	pullDigest(t, m, "app/img7:v1")
	if n := faulty.BlobGets(); n != 0 {
		t.Errorf("the most recently pulled image needed %d upstream blob GETs; it should have been kept", n)
	}
	for _, d := range layerDigests(t, imgs[0]) {
		if _, err := os.Stat(blobPath(m, d)); err == nil {
			t.Errorf("the oldest image's layer %s is still on disk", d)
		}
	}
	// Everything still pulls correctly (evicted content is fetched again).
	for i := range imgs {
		pullDigest(t, m, fmt.Sprintf("app/img%d:v1", i))
	}
	used := waitUsage(t, m, capBytes+slack)
	t.Logf("after all pulls: %d bytes in a %d-byte cache, %v evictions", used, capBytes, testutil.ToFloat64(m.Metrics.Evictions))
}

func TestEvictionNeverRemovesPinnedContent(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	const layer = 512 << 10
	pinned := upstreamtest.RandomImage(t, 2, layer, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "app/keep:v1", pinned)
	for i := 0; i < 6; i++ {
		upstreamtest.Push(t, reg, fmt.Sprintf("app/churn%d:v1", i), upstreamtest.RandomImage(t, 2, layer, upstreamtest.DockerManifest))
	}
	m := startMirror(t, reg.URL, mirrorOpts{
		maxSize: 3 << 20,
		pins:    []cache.Pin{{Repo: cache.Repo{Upstream: hostOf(reg.URL), Path: "app/keep"}, Tag: "v1"}},
	})
	pullDigest(t, m, "app/keep:v1") // the oldest: first in line for eviction, but pinned
	for i := 0; i < 6; i++ {
		pullDigest(t, m, fmt.Sprintf("app/churn%d:v1", i))
		waitUsage(t, m, 3<<20+layer+64<<10)
	}
	waitFills(t, m)
	for _, d := range layerDigests(t, pinned) {
		if _, err := os.Stat(blobPath(m, d)); err != nil {
			t.Errorf("pinned layer %s was evicted", d)
		}
	}
}

// TestEvictionDuringConcurrentPulls: 20 clients pull through a cache far
// smaller than what they pull, so eviction runs all the time; no client may
// ever get a short or wrong blob.
func TestEvictionDuringConcurrentPulls(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 20 clients against a constantly evicting cache")
	}
	reg := upstreamtest.NewRegistry(t)
	const n = 8
	for i := 0; i < n; i++ {
		upstreamtest.Push(t, reg, fmt.Sprintf("app/c%d:v1", i), upstreamtest.RandomImage(t, 3, 256<<10, upstreamtest.DockerManifest))
	}
	m := startMirror(t, reg.URL, mirrorOpts{maxSize: 2 << 20})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for c := 0; c < 20; c++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			opts := client(t)
			for k := 0; k < 6; k++ {
				ref := m.ref(t, fmt.Sprintf("app/c%d:v1", rng.Intn(n)))
				img, err := remote.Image(ref, opts...)
				if err == nil {
					err = validate.Image(img)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", ref, err)
					return
				}
			}
		}(int64(c))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if testutil.ToFloat64(m.Metrics.Evictions) == 0 {
		t.Error("no eviction happened: the test did not exercise what it claims")
	}
}

func hostOf(url string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(url) > len(p) && url[:len(p)] == p {
			return url[len(p):]
		}
	}
	return url
}
