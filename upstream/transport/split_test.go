package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestSplitByWhatCarriesABlob: over TLS to a server offering HTTP/2, the
// requests that carry a blob (a blob GET, an upload's PUT or PATCH with
// bytes) go over HTTP/1.1, and the rest, blob requests without a body
// either way included (HEAD, DELETE, the POST starting an upload), over
// HTTP/2 with the API.
func TestSplitByWhatCarriesABlob(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	base := NewBase()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	up, _ := url.Parse(srv.URL)
	g, err := NewGuard(base, GuardOptions{Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.CloseIdleConnections)

	tests := []struct {
		kind, method, body string
		want               string
	}{
		{KindBlob, http.MethodGet, "", "HTTP/1.1"},
		{KindBlob, http.MethodPut, "bytes", "HTTP/1.1"},
		{KindBlob, http.MethodPatch, "bytes", "HTTP/1.1"},
		{KindBlob, http.MethodPost, "bytes", "HTTP/1.1"}, // a monolithic upload
		{KindBlob, http.MethodHead, "", "HTTP/2.0"},
		{KindBlob, http.MethodDelete, "", "HTTP/2.0"},
		{KindBlob, http.MethodPost, "", "HTTP/2.0"},
		{KindBlob, http.MethodPut, "", "HTTP/2.0"}, // closing an upload sent in chunks
		{KindManifest, http.MethodGet, "", "HTTP/2.0"},
		{KindManifest, http.MethodPut, "{}", "HTTP/2.0"},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		req, err := http.NewRequestWithContext(WithKind(context.Background(), tt.kind), tt.method, srv.URL+"/v2/x/blobs/y", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := g.RoundTrip(req)
		if err != nil {
			t.Errorf("%s %s: %v", tt.kind, tt.method, err)
			continue
		}
		drain(resp.Body)
		if got := resp.Header.Get("X-Proto"); got != tt.want {
			t.Errorf("%s %s with body %q: %s, want %s", tt.kind, tt.method, tt.body, got, tt.want)
		}
	}
}
