package peer

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestConcurrentPeerRequestsReuseConnections: rounds of concurrent
// requests to the owner go over the connections the first round opened,
// not over new ones (the transport's default keeps 2 idle per host).
func TestConcurrentPeerRequestsReuseConnections(t *testing.T) {
	const clients, rounds = 16, 3
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	var mu sync.Mutex
	conns := map[string]bool{} // the owner's peer connections, by the asker's address
	// Replica 1 owns every key, for both.
	h.start(t, 2, func(int) []int { return []int{1, 0} }, func(r *replica, o cache.Origin, _ *Client) cache.Options {
		return cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{o}, TagTTL: time.Hour, Metrics: r.metrics}
	}, func(i int, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	mirrorTag(t, h, "v1")
	asker := h.replicas[0]
	for range rounds {
		var wg sync.WaitGroup
		errs := make([]error, clients)
		for i := range clients {
			wg.Go(func() { _, errs[i] = asker.origin.GetManifest(t.Context(), repo.Path, "v1", tagAccept) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(conns); n > clients {
		t.Errorf("%d rounds of %d concurrent peer requests used %d connections, want at most %d", rounds, clients, n, clients)
	}
}
