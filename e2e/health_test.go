package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// A failing upstream costs milliseconds (DESIGN.md invariant 9).
//
// Four broken upstreams in front of a real registry, each with an image
// cached whose tag is older than its TTL: one that accepts and never
// answers, one whose port is closed, one that answers 503, one that sends
// headers only after several seconds. The cached image pulls through each
// on every request, not only the first, without waiting for the upstream
// (the upstream's header timeout is the default 30s: before the health
// state and the revalidation budget, the hung case waited for it on every
// pull). After the upstream heals, the next revalidation sees the tag's
// new digest.
//
// Assertions are on events, not on wall-clock thresholds, except one
// generous sanity bound well under the 30s header timeout.
func TestFailingUpstreamCostsMilliseconds(t *testing.T) {
	for _, tc := range []string{"hangs", "refuses", "503", "slow"} {
		t.Run(tc, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t)
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			front := newSwitchable(t, faulty.URL) // can close its port, and listen on it again
			clk := &clock{now: time.Now()}
			m := startMirror(t, front.URL, mirrorOpts{
				tagTTL: time.Minute, clock: clk, timeout: 30 * time.Second,
				revalidate: 500 * time.Millisecond, probeMin: 50 * time.Millisecond,
			})
			a := upstreamtest.Push(t, reg, "app/svc:v1", upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest))
			if got := pullDigest(t, m, "app/svc:v1"); got != a.Digest.String() {
				t.Fatalf("first pull: %s, want %s", got, a.Digest)
			}
			up := func() float64 { return testutil.ToFloat64(m.Metrics.UpstreamUp.WithLabelValues(m.up.Name())) }
			stale := func() float64 { return testutil.ToFloat64(m.Metrics.StaleServed.WithLabelValues("tag")) }
			notSent := func() float64 {
				return testutil.ToFloat64(m.Metrics.UpstreamFailures.WithLabelValues(m.up.Name(), "down"))
			}

			// Break it.
			hang := newHangs()
			defer hang.release()
			switch tc {
			case "hangs":
				faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
					if strings.Contains(r.URL.Path, "/manifests/") {
						hang.hold(r)
					}
					return upstreamtest.Fault{}
				})
			case "refuses":
				front.refuse()
			case "503":
				faulty.SetFault(func(*http.Request) upstreamtest.Fault {
					return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
				})
			case "slow":
				faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
					if strings.Contains(r.URL.Path, "/manifests/") {
						return upstreamtest.Fault{Delay: 5 * time.Second}
					}
					return upstreamtest.Fault{}
				})
			}
			faulty.ResetCounts()

			const pulls = 5
			for i := range pulls {
				clk.Advance(2 * time.Minute) // past the TTL: every pull revalidates
				start := time.Now()
				if got := pullDigest(t, m, "app/svc:v1"); got != a.Digest.String() {
					t.Fatalf("pull %d: %s, want the cached %s", i, got, a.Digest)
				}
				elapsed := time.Since(start)
				t.Logf("pull %d through an upstream that %s: %v", i, tc, elapsed)
				if elapsed > 10*time.Second {
					t.Errorf("pull %d took %v: it waited for the upstream", i, elapsed)
				}
				if i == 0 && tc == "hangs" && hang.returned.Load() {
					t.Fatal("the hung request returned before the pull completed")
				}
			}
			if got := stale(); got != pulls {
				t.Errorf("wharf_stale_served_total{kind=tag} = %v, want %d (every pull served the cached tag)", got, pulls)
			}
			manifestAsks := faulty.Count("", "/manifests/")
			switch tc {
			case "hangs":
				// One revalidation, still held: the pulls after the first did
				// not start another nor wait for it.
				if hang.returned.Load() {
					t.Error("the hung request returned while the pulls were served: they waited for it")
				}
				if manifestAsks != 1 {
					t.Errorf("%d manifest requests reached the hung upstream, want 1 (one revalidation in the background)", manifestAsks)
				}
			case "refuses", "503":
				// Marked down during the first pull; the others did not ask.
				if up() != 0 {
					t.Errorf("wharf_upstream_up = %v, want 0", up())
				}
				if got := notSent(); got < pulls-1 {
					t.Errorf("%v revalidations were answered without asking the down upstream, want >= %d", got, pulls-1)
				}
				if tc == "503" && manifestAsks != 3 {
					t.Errorf("%d manifest requests reached the failing upstream, want 3 (then it was down)", manifestAsks)
				}
			case "slow":
				if up() != 1 {
					t.Errorf("wharf_upstream_up = %v for a slow upstream that answers, want 1", up())
				}
			}

			// A miss while down fails fast with 503, Retry-After and since when.
			if tc == "refuses" || tc == "503" {
				resp := get(t, m.URL+"/v2/app/svc/manifests/other")
				var body strings.Builder
				_, _ = io.Copy(&body, resp.Body)
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
					!strings.Contains(body.String(), "is down (marked since ") {
					t.Errorf("a miss while down: %d Retry-After %q %s; want 503, Retry-After and since when",
						resp.StatusCode, resp.Header.Get("Retry-After"), body.String())
				}
			}

			// Heal, with the tag moved meanwhile: the next revalidation sees it.
			b := upstreamtest.Push(t, reg, "app/svc:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest))
			faulty.SetFault(nil)
			front.heal(t)
			hang.release()
			waitFor(t, "the upstream to be up", func() bool { return up() == 1 })
			waitFor(t, "a pull to see the moved tag", func() bool {
				clk.Advance(2 * time.Minute)
				return pullDigest(t, m, "app/svc:v1") == b.Digest.String()
			})
		})
	}
}

// hangs holds requests (accepted, never answered) until release, and
// records whether any returned before.
type hangs struct {
	released chan struct{}
	once     sync.Once
	returned atomic.Bool
}

func newHangs() *hangs { return &hangs{released: make(chan struct{})} }

func (h *hangs) hold(r *http.Request) {
	select {
	case <-h.released:
	case <-r.Context().Done():
	}
	select {
	case <-h.released:
	default:
		h.returned.Store(true) // given up on by wharf before the release
	}
}

func (h *hangs) release() { h.once.Do(func() { close(h.released) }) }

// switchable is a reverse proxy to target on a port it can close (so
// connections are refused) and listen on again.
type switchable struct {
	URL  string
	addr string
	rp   *httputil.ReverseProxy
	tr   *http.Transport
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func newSwitchable(t *testing.T, target string) *switchable {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	s := &switchable{tr: http.DefaultTransport.(*http.Transport).Clone()}
	s.rp = httputil.NewSingleHostReverseProxy(u)
	s.rp.Transport = s.tr
	s.listen(t, "127.0.0.1:0")
	s.URL = "http://" + s.addr
	t.Cleanup(func() { s.refuse(); s.tr.CloseIdleConnections() })
	return s
}

func (s *switchable) listen(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.rp}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("switchable: %v", err)
		}
	}(s.srv, s.done)
}

// refuse closes the port and every connection; it waits for the server.
func (s *switchable) refuse() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// heal listens on the same port again if it was closed.
func (s *switchable) heal(t *testing.T) {
	s.mu.Lock()
	closed := s.srv == nil
	s.mu.Unlock()
	if closed {
		s.listen(t, s.addr)
	}
}
