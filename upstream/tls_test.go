package upstream_test

import (
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/wharf-mirror/wharf/upstream"
)

// TestUpstreamTLS: an HTTPS upstream with a private CA is refused by
// default, reached with its CA file, and reached without checks when
// insecureSkipVerify is on.
func TestUpstreamTLS(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New())
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tags := func(edit func(*upstream.Options)) error {
		c := newClient(t, srv.URL, func(o *upstream.Options) { o.MaxRetries = -1; edit(o) })
		_, _, err := c.Tags(t.Context(), "no/such", 0, "")
		return err
	}
	if err := tags(func(*upstream.Options) {}); !errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v, want ErrUnavailable naming the certificate", err)
	}
	if err := tags(func(o *upstream.Options) { o.CAFile = caFile }); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("with the CA file: %v, want the registry's own 404", err)
	}
	if err := tags(func(o *upstream.Options) { o.InsecureSkipVerify = true }); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("insecure: %v, want the registry's own 404", err)
	}

	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("nope"), 0o600)
	for file, want := range map[string]string{notPEM: "holds no PEM certificate", "/nonexistent/ca.pem": "no such file"} {
		if _, err := upstream.New(upstream.Options{URL: srv.URL, CAFile: file}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CA file %s: %v, want %q", file, err, want)
		}
	}
}
