package peer

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// pullEverywhere pulls d through every replica, rounds times each, all at
// once, and fails t for each pull that fails.
func pullEverywhere(t *testing.T, h *harness, d digest.Digest, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(h.replicas)*rounds)
	for i := range errs {
		wg.Go(func() { _, errs[i] = pull(t.Context(), h.replicas[i%len(h.replicas)], d) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d through replica %d: %v", i, i%len(h.replicas), err)
		}
	}
}

// TestSegmentedFillByTheOwnerOnly: with segmented fetch on, a big blob
// pulled at once through every replica is fetched by its owner alone, as
// ranges (each byte once), and the others stream it from the owner.
func TestSegmentedFillByTheOwnerOnly(t *testing.T) {
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	h.start(t, 3, nil, func(r *replica, o cache.Origin, _ *Client) cache.Options {
		return cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{o}, TagTTL: time.Hour, Metrics: r.metrics,
			SegmentThreshold: 256 << 10, Segments: 4}
	}, nil)
	d, size := layerSized(t, h, 1<<20)
	pullEverywhere(t, h, d, 2)
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 4 {
		t.Errorf("the registry got %d GETs of the blob, want the owner's 4 ranges", n)
	}
	if n := h.up.BlobBytes(); n != size {
		t.Errorf("the registry sent %d bytes for a blob of %d", n, size)
	}
	owner := h.owner(d.String())
	for i, r := range h.replicas {
		segmented := testutil.ToFloat64(r.metrics.Segments.Fills.WithLabelValues("segmented"))
		if want := float64(map[bool]int{true: 1}[i == owner]); segmented != want {
			t.Errorf("replica %d (owner %v) segmented %v fills, want %v", i, i == owner, segmented, want)
		}
	}
}

// TestRangeResumeFromZeroGoesToTheRegistry: a replica that does not own
// a blob answers the fill's first request ErrNoRanges, asking nothing,
// but a resume of range 0 from byte 0 (a fill it segments already, the
// ranking changed meanwhile) goes to the registry.
func TestRangeResumeFromZeroGoesToTheRegistry(t *testing.T) {
	h := newHarness(t, 2, time.Hour, func(int) []int { return []int{1, 0} }) // replica 1 owns all
	d, _ := layerSized(t, h, 64<<10)
	o := h.replicas[0].origin
	if _, _, _, err := o.GetBlobRange(t.Context(), repo.Path, d, 0, 1000, true); !errors.Is(err, cache.ErrNoRanges) {
		t.Errorf("first request of a blob another replica owns: %v, want ErrNoRanges", err)
	}
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 0 {
		t.Errorf("ErrNoRanges asked the registry %d times", n)
	}
	body, size, whole, err := o.GetBlobRange(t.Context(), repo.Path, d, 0, 1000, false)
	if err != nil {
		t.Fatalf("resume from 0: %v, want the registry's range", err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || len(b) != 1000 || size < 1000 || whole {
		t.Errorf("resume from 0: %d bytes of %d, whole %v, %v; want 1000", len(b), size, whole, err)
	}
}
