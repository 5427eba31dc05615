package transport

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
)

// TestObserveCountsConnectionsOpened: wharf_upstream_connections_total
// counts the connections the listener accepted, whether a request used
// them or not: here one that no request got, its TLS handshake failing
// (the server's certificate is not trusted), and one kept alive for
// three requests.
func TestObserveCountsConnectionsOpened(t *testing.T) {
	tests := []struct {
		name     string
		tls      bool
		requests int
		wantOK   bool
	}{
		{"refused in the TLS handshake", true, 1, false},
		{"kept alive", false, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var accepted atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					accepted.Add(1)
				}
			}
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			m := metrics.New(prometheus.NewRegistry())
			o, err := NewObserve(base, "test", m)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.requests {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
				resp, err := o.RoundTrip(req)
				if (err == nil) != tt.wantOK {
					t.Fatalf("RoundTrip: %v, want success %v", err, tt.wantOK)
				}
				if err == nil {
					drain(resp.Body)
				}
			}
			base.CloseIdleConnections()
			srv.Close() // waits for the server's side of every connection
			if got, n := testutil.ToFloat64(m.UpstreamConnections.WithLabelValues("test")), accepted.Load(); got != float64(n) || n != 1 {
				t.Errorf("wharf_upstream_connections_total = %v, the listener accepted %d; want 1 and 1", got, n)
			}
		})
	}
}
