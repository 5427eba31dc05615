package upstream_test

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/transport"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestConnectionsReused: blob GETs reuse the connections to the registry
// and to the CDN its redirects lead to, sequential GETs one connection
// and bursts of concurrent ones at most one per request in flight, so a
// pull pays for TCP (and TLS) once per connection, not once per request.
// Go's default idle pool keeps 2 connections per host: the rest of a
// burst's were closed and the next burst dialled them again.
func TestConnectionsReused(t *testing.T) {
	const bursts, inFlight = 3, 16
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "conns/app", 4<<10)
	tests := []struct {
		name            string
		redirect        bool
		parallel        int
		wantReg, wantCD int // the most connections each listener may accept
	}{
		{"sequential", false, 1, 1, 0},
		{"sequential via CDN", true, 1, 1, 1},
		// Go's transport drops a connection now and then when it cannot
		// confirm in time (50ms) that the request was written: the race
		// detector on a busy machine can cause it. Hence some slack.
		{"concurrent", false, inFlight, inFlight + inFlight/4, 0},
		{"concurrent via CDN", true, inFlight, inFlight + inFlight/4, inFlight + inFlight/4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			if tt.redirect {
				faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
					return upstreamtest.Fault{Redirect: r.Method == http.MethodGet}
				})
			}
			m := newMetrics()
			c := newClient(t, faulty.URL, func(o *upstream.Options) {
				o.Network = transport.NetworkInternal // the CDN is on 127.0.0.1 too
				o.Metrics = m
			})
			n := bursts * inFlight / tt.parallel // 48 GETs either way
			getInBursts(t, c, "conns/app", d, string(want), n, tt.parallel)
			regConns, cdnConns := faulty.Conns()
			t.Logf("%d blob GETs, %d at a time: %d connections to the registry, %d to the CDN", n*tt.parallel, tt.parallel, regConns, cdnConns)
			if regConns > tt.wantReg || cdnConns > tt.wantCD {
				t.Errorf("%d connections to the registry and %d to the CDN, want at most %d and %d", regConns, cdnConns, tt.wantReg, tt.wantCD)
			}
			if tt.redirect && cdnConns == 0 {
				t.Error("no GET reached the CDN")
			}
			// The metric counts what the listeners saw, a dial that lost
			// the race to an idle connection (pooled unused) included.
			counted, seen := settled(m, c.Name(), func() int { r, c := faulty.Conns(); return r + c })
			if counted != seen {
				t.Errorf("wharf_upstream_connections_total = %d, the listeners saw %d", counted, seen)
			}
		})
	}
}

// getInBursts GETs blob d of repo in bursts of size concurrent GETs,
// each burst after the last has ended, and checks each body. Bursts are
// how wharf fetches (an image's blobs at once, then the next image's);
// within one, a request that finds no idle connection dials, so the
// second burst shows whether the first's connections were kept.
func getInBursts(t *testing.T, c *upstream.Client, repo string, d digest.Digest, want string, bursts, size int) {
	t.Helper()
	for range bursts {
		errs := make(chan error, size)
		var wg sync.WaitGroup
		for range size {
			wg.Go(func() { errs <- readBlobIs(t, c, repo, d, want) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("GetBlob: %v", err)
			}
		}
	}
}

// readBlobIs GETs blob d of repo and checks its body is want.
func readBlobIs(t *testing.T, c *upstream.Client, repo string, d digest.Digest, want string) error {
	rc, _, err := c.GetBlob(t.Context(), repo, d, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err == nil && string(b) != want {
		err = errors.New("wrong body")
	}
	return err
}

// settled returns wharf_upstream_connections_total for upstream and what
// the listeners saw (seen) once they agree, or after 5s: a dial that lost
// the race to a freed connection may still be completing, on either side,
// when the last request has ended.
func settled(m *metrics.Metrics, upstream string, seen func() int) (counted, listeners int) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		counted, listeners = int(testutil.ToFloat64(m.UpstreamConnections.WithLabelValues(upstream))), seen()
		if counted == listeners {
			return counted, listeners
		}
		select {
		case <-tick.C:
		case <-deadline:
			return counted, listeners
		}
	}
}
