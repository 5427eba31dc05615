package upstream_test

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// h2Server is a server over TLS offering HTTP/2, as Docker Hub and its
// CDN do. It records the protocol of every request by what it asked for
// ("api HTTP/2.0", "blob HTTP/1.1"), counts the connections it accepts,
// and may hold blob GETs at a gate.
type h2Server struct {
	*httptest.Server
	conns atomic.Int32

	mu     sync.Mutex
	protos map[string]int
}

// newH2Server serves h; blob GETs wait at g first unless g is nil.
func newH2Server(t *testing.T, h http.Handler, g *gate) *h2Server {
	t.Helper()
	return newH2ServerWith(t, h, g, nil)
}

// newH2ServerWith is newH2Server with cert instead of httptest's, if not
// nil.
func newH2ServerWith(t *testing.T, h http.Handler, g *gate, cert *tls.Certificate) *h2Server {
	t.Helper()
	s := &h2Server{protos: map[string]int{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := "api"
		if strings.Contains(r.URL.Path, "/blobs/") {
			what = "blob"
		}
		s.mu.Lock()
		s.protos[what+" "+r.Proto]++
		s.mu.Unlock()
		if g != nil && what == "blob" && r.Method == http.MethodGet {
			g.wait()
		}
		h.ServeHTTP(w, r)
	}))
	s.EnableHTTP2 = true
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if cert != nil {
		s.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// requests returns the requests seen, by kind and protocol.
func (s *h2Server) requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protos
}

// h2Image is a registry (its handler, to serve from servers of each
// test's own) holding h2/app:v1, an image of one 4 KiB layer; and a CA
// file trusting every httptest TLS server (they share one certificate).
type h2Image struct {
	handler http.Handler
	caFile  string
	layer   digest.Digest
	bytes   string
}

func newH2Image(t *testing.T) h2Image {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	img := upstreamtest.RandomImage(t, 1, 4<<10, upstreamtest.DockerManifest)
	ref, err := name.ParseReference(srv.Listener.Addr().String() + "/h2/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	pushTr := srv.Client().Transport.(*http.Transport)
	if err := remote.Write(ref, img, remote.WithTransport(pushTr), remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push: %v", err)
	}
	pushTr.CloseIdleConnections()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	d, b := layerBytes(t, img)
	return h2Image{handler: h, caFile: caFile, layer: d, bytes: string(b)}
}

// TestHTTP2WhereOffered: over TLS, an upstream that offers HTTP/2 is
// spoken to in HTTP/2 for the API through the whole client stack (the
// guard, and the transport cloned for a CA file or for insecure TLS):
// manifests, their HEADs and tag lists, a burst of them at once, share
// one connection.
func TestHTTP2WhereOffered(t *testing.T) {
	const burst = 16
	img := newH2Image(t)
	tests := []struct {
		name string
		edit func(*upstream.Options)
	}{
		{"CA file", func(o *upstream.Options) { o.CAFile = img.caFile }},
		{"insecure", func(o *upstream.Options) { o.InsecureSkipVerify = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newH2Server(t, img.handler, nil)
			m := newMetrics()
			c := newClient(t, reg.URL, func(o *upstream.Options) { tt.edit(o); o.Metrics = m })
			if _, err := c.GetManifest(t.Context(), "h2/app", "v1", acceptAll); err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					var err error
					if i%2 == 0 {
						_, err = c.HeadManifest(t.Context(), "h2/app", "v1", acceptAll)
					} else {
						_, _, err = c.Tags(t.Context(), "h2/app", 0, "")
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := reg.requests(); got["api HTTP/2.0"] != burst+1 || len(got) != 1 {
				t.Errorf("requests %v, want all %d API requests in HTTP/2.0", got, burst+1)
			}
			if n := reg.conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1 (HTTP/2 carries the burst)", n)
			}
			if n := testutil.ToFloat64(m.UpstreamConnections.WithLabelValues(c.Name())); n != 1 {
				t.Errorf("wharf_upstream_connections_total = %v, want 1", n)
			}
		})
	}
}

// gate holds requests until n are in flight at once: for HTTP/1.1 the
// proof that they were sent concurrently, each on a connection of its
// own. A request that waits longer than a bound gives up and says so.
type gate struct {
	n        int32
	arrived  atomic.Int32
	open     chan struct{} // closed when the n-th arrives
	timedOut atomic.Int32
}

func newGate(n int32) *gate { return &gate{n: n, open: make(chan struct{})} }

func (g *gate) wait() {
	if g.arrived.Add(1) == g.n {
		close(g.open)
	}
	select {
	case <-g.open:
	case <-time.After(10 * time.Second):
		g.timedOut.Add(1)
	}
}

// redirectBlobs answers blob GETs with a redirect to the same path on
// cdn, as Docker Hub does, and passes the rest to h.
func redirectBlobs(h http.Handler, cdn string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, cdn+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TestBlobsOnConnectionsOfTheirOwn: over TLS to an upstream that offers
// HTTP/2, blob GETs go over HTTP/1.1, each of those in flight on a TCP
// connection of its own (one connection's throughput is capped on a long
// link; HTTP/2 would carry them all on one), on the registry and on the
// CDN its redirects lead to, while the API stays on one HTTP/2
// connection. The TLS settings (CA file, insecure) reach both transports,
// and wharf_upstream_connections_total counts both.
func TestBlobsOnConnectionsOfTheirOwn(t *testing.T) {
	const n = 8 // blobs at once, as prefetch fetches them
	img := newH2Image(t)
	tests := []struct {
		name string
		cdn  bool
		edit func(*upstream.Options)
	}{
		{"CA file", false, func(o *upstream.Options) { o.CAFile = img.caFile }},
		{"insecure", false, func(o *upstream.Options) { o.InsecureSkipVerify = true }},
		{"via CDN", true, func(o *upstream.Options) { o.CAFile = img.caFile }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(n)
			var reg, cdn *h2Server
			if tt.cdn {
				cdn = newH2Server(t, img.handler, g)
				reg = newH2Server(t, redirectBlobs(img.handler, cdn.URL), nil)
			} else {
				reg = newH2Server(t, img.handler, g)
			}
			m := newMetrics()
			// The registry and the CDN are on 127.0.0.1, so the upstream is
			// internal (NetworkAuto) and may redirect there.
			c := newClient(t, reg.URL, func(o *upstream.Options) { tt.edit(o); o.Metrics = m })
			if _, err := c.GetManifest(t.Context(), "h2/app", "v1", acceptAll); err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			getInBursts(t, c, "h2/app", img.layer, img.bytes, 1, n)
			if k := g.timedOut.Load(); k > 0 {
				t.Errorf("%d blob GETs waited in vain for %d to be in flight at once", k, n)
			}

			if got := reg.requests(); got["api HTTP/2.0"] != 1 || got["blob HTTP/1.1"] != n || len(got) != 2 {
				t.Errorf("registry: requests %v, want 1 API request in HTTP/2.0 and %d blob GETs in HTTP/1.1", got, n)
			}
			if !tt.cdn {
				// One HTTP/2 connection for the API, one per blob in flight.
				counted, k := settled(m, c.Name(), func() int { return int(reg.conns.Load()) })
				if k != 1+n || counted != k {
					t.Errorf("%d connections, %d counted by wharf_upstream_connections_total; want %d", k, counted, 1+n)
				}
				return
			}
			if got := cdn.requests(); got["blob HTTP/1.1"] != n || len(got) != 1 {
				t.Errorf("CDN: requests %v, want %d blob GETs in HTTP/1.1", got, n)
			}
			if k := cdn.conns.Load(); k != n {
				t.Errorf("%d connections to the CDN, want %d", k, n)
			}
			// The redirects are answered at once: their connections may be
			// fewer than n (a dial may lose the race to a freed connection
			// and go to the pool unused, still counted).
			counted, _ := settled(m, c.Name(), func() int { return int(reg.conns.Load() + cdn.conns.Load()) })
			regConns := int(reg.conns.Load())
			if regConns < 2 || regConns > 1+n || counted != regConns+n {
				t.Errorf("%d connections to the registry, %d counted in all; want 2 to %d, and those and the CDN's %d", regConns, counted, 1+n, n)
			}
		})
	}
}
