package upstream_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestProbeExplainsEachMisconfiguration probes real servers: a
// distribution registry (open, and behind Basic auth: 401 is healthy), a
// closed port, a port that accepts and never answers, https:// against the
// plain-HTTP registry, http:// against a TLS-only registry, an untrusted
// certificate and a web server that is no registry. Each gets its own
// kind, and an explanation that names what to change.
func TestProbeExplainsEachMisconfiguration(t *testing.T) {
	open := upstreamtest.NewRegistry(t)
	authed := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("u", "p"))
	tlsOnly := httptest.NewTLSServer(registry.New())
	t.Cleanup(tlsOnly.Close)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	tlsHost := tlsOnly.Listener.Addr().String()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsOnly.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, url string
		want      upstream.ProbeKind
		status    int
		fix       string // in Fix
		caFile    string
	}{
		{"healthy", open.URL, upstream.ProbeOK, 200, "", ""},
		{"401 is healthy", authed.URL, upstream.ProbeOK, 401, "", ""},
		{"refused", "http://" + closedPort(t), upstream.ProbeUnreachable, 0, "host and port", ""},
		{"https against plain HTTP", "https://" + open.Host, upstream.ProbePlainHTTP, 0, "use http://" + open.Host, ""},
		{"http against TLS only", "http://" + tlsHost, upstream.ProbeHTTPSOnly, 400, "use https://" + tlsHost, ""},
		{"untrusted certificate", tlsOnly.URL, upstream.ProbeCertificate, 0, "caFile", ""},
		{"trusted with its CA file", tlsOnly.URL, upstream.ProbeOK, 200, "", caFile}, // the client's own TLS settings
		{"not a registry", web.URL, upstream.ProbeNotRegistry, 404, "registry's API", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := newClient(t, c.url, func(o *upstream.Options) { o.CAFile = c.caFile }).Probe(t.Context(), 5*time.Second)
			if got.Kind != c.want || got.Status != c.status {
				t.Fatalf("Probe = %+v (%s), want kind %d status %d", got, got.Problem(), c.want, c.status)
			}
			if got.OK() != (c.want == upstream.ProbeOK) {
				t.Errorf("OK() = %v", got.OK())
			}
			if c.want == upstream.ProbeOK {
				if got.Problem() != "" || got.Fix() != "" {
					t.Errorf("a healthy upstream has a problem: %q; %q", got.Problem(), got.Fix())
				}
				return
			}
			if got.Problem() == "" || !strings.Contains(got.Fix(), c.fix) {
				t.Errorf("Problem %q, Fix %q: want a problem and %q in the fix", got.Problem(), got.Fix(), c.fix)
			}
		})
	}
}

// TestProbeGivesUpAtItsTimeout: an upstream that accepts connections and
// never answers is unreachable after the probe's own timeout, not the
// client's 30 s header timeout times its retries.
func TestProbeGivesUpAtItsTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan net.Conn, 4)
	go func() { // holds what it accepts until the test ends
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(hung)
				return
			}
			hung <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for conn := range hung {
			conn.Close()
		}
	})
	start := time.Now()
	got := newClient(t, "http://"+ln.Addr().String(), nil).Probe(t.Context(), 200*time.Millisecond)
	if got.Kind != upstream.ProbeUnreachable || !errors.Is(got.Err, context.DeadlineExceeded) {
		t.Errorf("Probe = %+v, want unreachable on its deadline", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the probe took %s with a 200ms timeout", d)
	}
}

// closedPort is an address nothing listens on: connections are refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTrimAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"https://registry.site/v2":           "https://registry.site",
		"https://registry.site/v2/":          "https://registry.site",
		"http://127.0.0.1:5001/v2//":         "http://127.0.0.1:5001",
		"https://proxy.site/mirror/v2/":      "https://proxy.site/mirror",
		"https://registry.site":              "",
		"https://registry.site/":             "",
		"https://registry.site/av2":          "",
		"https://registry.site/v2/something": "",
		"https://v2":                         "",
		"not a url at all ://":               "",
	} {
		got, trimmed := upstream.TrimAPIPath(in)
		if want == "" {
			if trimmed || got != in {
				t.Errorf("TrimAPIPath(%q) = %q, %v; want it unchanged", in, got, trimmed)
			}
			continue
		}
		if !trimmed || got != want {
			t.Errorf("TrimAPIPath(%q) = %q, %v; want %q", in, got, trimmed, want)
		}
	}
}
