package peer

import (
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
