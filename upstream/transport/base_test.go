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
	"time"
)

// TestGuardCloneKeepsPoolAndHTTP2: the transport the guard clones for a
// public upstream's redirects (its CDN) keeps the base's pool settings and
// speaks HTTP/2 where offered despite its own dialer, but for blobs,
// which go over HTTP/1.1 connections of their own (split.go); and a burst
// of requests through it shares its connections, which
// CloseIdleConnections closes. The CDN is on 127.0.0.1 here, which the
// clone's dialer refuses; the test lets it through the way the guard lets
// a proxy through.
func TestGuardCloneKeepsPoolAndHTTP2(t *testing.T) {
	const bursts, inFlight = 3, 16
	tests := []struct {
		name  string
		h2    bool   // the server offers HTTP/2
		kind  string // of the requests
		want  string // the protocol the server sees
		conns int32  // for all the requests
	}{
		// HTTP/2 carries the bursts on the first connection; HTTP/1.1
		// needs one per request in flight (the first request's
		// connection is one of them).
		{"HTTP/2", true, KindManifest, "HTTP/2.0", 1},
		{"HTTP/2 offered, blobs", true, KindBlob, "HTTP/1.1", inFlight},
		{"HTTP/1.1", false, KindManifest, "HTTP/1.1", inFlight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int32
			closed := make(chan struct{}, bursts*inFlight+1)
			held, release := make(chan struct{}, inFlight), make(chan struct{})
			cdn := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("hold") {
					held <- struct{}{}
					<-release
				}
				io.WriteString(w, r.Proto)
			}))
			cdn.EnableHTTP2 = tt.h2
			cdn.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
				if s == http.StateClosed {
					closed <- struct{}{}
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
			if g.foreign == nil {
				t.Fatal("no checking clone")
			}
			for _, f := range []*http.Transport{g.foreign.api, g.foreign.blob} {
				if f.MaxIdleConnsPerHost != MaxIdleConnsPerHost || f.MaxIdleConns != MaxIdleConns || f.IdleConnTimeout != IdleConnTimeout {
					t.Fatalf("the guard's clone lost the pool: %+v", f)
				}
			}
			g.proxies.Store(strings.TrimPrefix(cdn.URL, "https://"), struct{}{})

			if got := guardGet(t, g, tt.kind, cdn.URL); got != tt.want {
				t.Fatalf("first request in %s, want %s", got, tt.want)
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
						if got := guardGet(t, g, tt.kind, u); got != tt.want {
							t.Errorf("request in %s, want %s", got, tt.want)
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
			t.Logf("%s: %d requests, %d at a time: %d connections", tt.name, bursts*inFlight+1, inFlight, conns.Load())
			if n := conns.Load(); n != tt.conns {
				t.Errorf("%d connections for %d requests, want %d", n, bursts*inFlight+1, tt.conns)
			}
			// CloseIdleConnections reaches the transport the requests went
			// through: the server sees every connection closed.
			g.CloseIdleConnections()
			timeout := time.After(10 * time.Second)
			for i := range conns.Load() {
				select {
				case <-closed:
				case <-timeout:
					t.Fatalf("%d of %d connections closed after CloseIdleConnections", i, conns.Load())
				}
			}
		})
	}
}

// guardGet GETs u through g as a request of kind and returns the body,
// the protocol the server saw.
func guardGet(t *testing.T, g *Guard, kind, u string) string {
	req, err := http.NewRequestWithContext(WithKind(t.Context(), kind), http.MethodGet, u, nil)
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
