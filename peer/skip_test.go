package peer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPeerWithoutTheUpstreamIsSkippedNotFailed: replica 1, ranked first
// by replica 0 for every key, is configured without the registry (a
// rolling change of the configuration). Replica 0 asks it, hears that it
// lacks the upstream, and asks the next member (itself, the registry)
// for that request, without marking it failed: every pull still
// succeeds, and replica 1 is asked again for the next one.
func TestPeerWithoutTheUpstreamIsSkippedNotFailed(t *testing.T) {
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	h.start(t, 2, func(int) []int { return []int{1, 0} }, func(r *replica, o cache.Origin, _ *Client) cache.Options {
		opts := cache.Options{Dir: t.TempDir(), TagTTL: time.Hour, Metrics: r.metrics}
		if len(h.replicas) == 0 { // replica 0 has the registry; replica 1 none
			opts.Origins = []cache.Origin{o}
		}
		return opts
	}, nil)
	r := h.replicas[0]
	for i, tag := range []string{"v1", "v2"} {
		img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
		want := upstreamtest.Push(t, h.reg, repo.Path+":"+tag, img).Digest
		m, err := r.cache.Manifest(t.Context(), repo, tag, tagAccept)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if m.Descriptor.Digest != want {
			t.Fatalf("%s is %s, want %s", tag, m.Descriptor.Digest, want)
		}
		if f := r.spy.Failed(); len(f) != 0 {
			t.Fatalf("%s: replica 1 was marked failed: %v", tag, f)
		}
		if n := testutil.ToFloat64(r.metrics.PeerRequests.WithLabelValues("skipped")); n != float64(i+1) {
			t.Errorf("after %s: %v requests skipped replica 1, want %d", tag, n, i+1)
		}
	}
}
