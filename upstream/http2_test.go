package upstream_test

import (
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// h2Registry is a registry over TLS offering HTTP/2, recording the
// protocol of every request and counting the connections it accepts.
type h2Registry struct {
	*httptest.Server
	caFile string
	conns  atomic.Int32

	mu     sync.Mutex
	protos map[string]int // "HTTP/2.0" → requests
}

func newH2Registry(t *testing.T) *h2Registry {
	t.Helper()
	r := &h2Registry{protos: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.protos[req.Proto]++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	r.EnableHTTP2 = true
	r.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.StartTLS()
	t.Cleanup(r.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// requests returns the requests seen by protocol and resets the counts.
func (r *h2Registry) requests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.protos
	r.protos = map[string]int{}
	return out
}

// TestHTTP2WhereOffered: over TLS, an upstream that offers HTTP/2 is
// spoken to in HTTP/2 through the whole client stack (the guard, and the
// transport cloned for a CA file or for insecure TLS), and a burst of
// concurrent blob GETs shares the one connection.
func TestHTTP2WhereOffered(t *testing.T) {
	reg := newH2Registry(t)
	img := upstreamtest.RandomImage(t, 1, 4<<10, upstreamtest.DockerManifest)
	ref, err := name.ParseReference(reg.Listener.Addr().String() + "/h2/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	pushTr := reg.Client().Transport.(*http.Transport)
	if err := remote.Write(ref, img, remote.WithTransport(pushTr), remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push: %v", err)
	}
	pushTr.CloseIdleConnections()
	d, want := layerBytes(t, img)

	tests := []struct {
		name string
		edit func(*upstream.Options)
	}{
		{"CA file", func(o *upstream.Options) { o.CAFile = reg.caFile }},
		{"insecure", func(o *upstream.Options) { o.InsecureSkipVerify = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			c := newClient(t, reg.URL, func(o *upstream.Options) { tt.edit(o); o.Metrics = m })
			reg.requests()
			before := reg.conns.Load()
			if _, err := c.GetManifest(t.Context(), "h2/app", "v1", acceptAll); err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			getInBursts(t, c, "h2/app", d, string(want), 2, 16)
			got := reg.requests()
			if got["HTTP/2.0"] != 33 || len(got) != 1 {
				t.Errorf("requests by protocol %v, want all 33 in HTTP/2.0", got)
			}
			if n := reg.conns.Load() - before; n != 1 {
				t.Errorf("%d connections, want 1 (HTTP/2 carries the burst)", n)
			}
			if n := testutil.ToFloat64(m.UpstreamConnections.WithLabelValues(c.Name())); n != 1 {
				t.Errorf("wharf_upstream_connections_total = %v, want 1", n)
			}
		})
	}
}
