package transport

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestGuardCloneKeepsPoolAndHTTP2: the transport the guard clones for a
// public upstream's redirects (its CDN) keeps the base's idle pool and
// speaks HTTP/2 where offered despite its own dialer, and a burst of
// requests through it shares its connections. The CDN is on 127.0.0.1
// here, which the clone's dialer refuses; the test lets it through the
// way the guard lets a proxy through.
func TestGuardCloneKeepsPoolAndHTTP2(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		name := map[bool]string{true: "HTTP/2", false: "HTTP/1.1"}[h2]
		t.Run(name, func(t *testing.T) {
			const bursts, inFlight = 3, 16
			var conns atomic.Int32
			held, release := make(chan struct{}, inFlight), make(chan struct{})
			cdn := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("hold") {
					held <- struct{}{}
					<-release
				}
				io.WriteString(w, r.Proto)
			}))
			cdn.EnableHTTP2 = h2
			cdn.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}

			}
			cdn.StartTLS()
			t.Cleanup(cdn.Close)

			base := NewBase()
			pool := x509.NewCertPool()
			pool.AddCert(cdn.Certificate())
			base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			up, _ := url.Parse("https://registry.example")
			g, err := NewGuard(base, GuardOptions{Upstream: up, Network: NetworkPublic})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.CloseIdleConnections)
			f := g.foreign
			if f == nil || f.MaxIdleConnsPerHost != MaxIdleConnsPerHost || f.MaxIdleConns != MaxIdleConns ||
				f.IdleConnTimeout != IdleConnTimeout || !f.ForceAttemptHTTP2 {
				t.Fatalf("the guard's clone lost the pool or HTTP/2: %+v", f)
			}
			g.proxies.Store(strings.TrimPrefix(cdn.URL, "https://"), struct{}{})

			want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
			if got := guardGet(t, g, cdn.URL); got != want {
				t.Fatalf("first request in %s, want %s", got, want)
			}
			// Bursts, each after the last ended: the second and third
			// find the first's connections idle, if they were kept. The
			// first burst's requests are held until all are in flight,
			// so that each needs a connection of its own.
			for i := range bursts {
				u := cdn.URL
				if i == 0 {
					u += "?hold"
				}
				var wg sync.WaitGroup
				for range inFlight {
					wg.Go(func() {
						if got := guardGet(t, g, u); got != want {
							t.Errorf("request in %s, want %s", got, want)
						}
					})
				}
				if i == 0 {
					for range inFlight {
						<-held
					}
					close(release)
				}
				wg.Wait()
			}
			// HTTP/2 carries the bursts on the first connection; HTTP/1.1
			// needs one per request in flight (the first request's
			// connection is one of them).
			most := map[bool]int32{true: 1, false: inFlight}[h2]
			t.Logf("%s: %d requests, %d at a time: %d connections", name, bursts*inFlight+1, inFlight, conns.Load())
			if n := conns.Load(); n > most {
				t.Errorf("%d connections for %d requests, want at most %d", n, bursts*inFlight+1, most)
			}
		})
	}
}

// guardGet GETs u through g and returns the body, the protocol the
// server saw.
func guardGet(t *testing.T, g *Guard, u string) string {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Error(err)
		return ""
	}
	resp, err := g.RoundTrip(req)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}
