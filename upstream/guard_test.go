package upstream_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// counted is a test server that counts the requests reaching it.
type counted struct {
	*httptest.Server
	hits atomic.Int32
}

// newCounted serves h on 127.0.0.1, counting requests.
func newCounted(t *testing.T, h http.HandlerFunc) *counted {
	t.Helper()
	c := &counted{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

// internalService is what a hostile upstream aims wharf at: a service on
// the site's own network answering text/plain.
func internalService(t *testing.T) *counted {
	return newCounted(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "internal service: secret")
	})
}

// TestHostileUpstreamCannotAimAtInternalNetwork: an upstream treated as
// public answers a manifest GET, a blob GET or its auth challenge by
// pointing at a service on 127.0.0.1. Each is ErrTargetRefused, asked of
// the upstream once (not retried), counted as a failure, and the internal
// service is never contacted.
func TestHostileUpstreamCannotAimAtInternalNetwork(t *testing.T) {
	d := digest.FromString("layer")
	tests := []struct {
		name string
		call func(*testing.T, *upstream.Client) error
		// answer is the hostile upstream's reply, given the internal URL.
		answer func(w http.ResponseWriter, r *http.Request, internal string)
	}{
		{"manifest redirect", getManifest, redirectTo("/internal")},
		{"blob redirect", getBlob(d), redirectTo("/internal")},
		{"token realm", getManifest, func(w http.ResponseWriter, _ *http.Request, internal string) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="registry"`, internal))
			w.WriteHeader(http.StatusUnauthorized)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			internal := internalService(t)
			hostile := newCounted(t, func(w http.ResponseWriter, r *http.Request) { tt.answer(w, r, internal.URL) })
			m := newMetrics()
			c := newClient(t, hostile.URL, func(o *upstream.Options) {
				o.Network = transport.NetworkPublic
				o.Metrics = m
			})
			err := tt.call(t, c)
			if !errors.Is(err, upstream.ErrTargetRefused) {
				t.Fatalf("error = %v, want ErrTargetRefused", err)
			}
			if !strings.Contains(err.Error(), "loopback address") {
				t.Errorf("the error does not say why: %v", err)
			}
			if n := internal.hits.Load(); n != 0 {
				t.Errorf("the internal service was contacted %d times", n)
			}
			if n := hostile.hits.Load(); n != 1 {
				t.Errorf("the upstream was asked %d times, want 1 (a refusal is not retried)", n)
			}
			if n := testutil.ToFloat64(m.UpstreamFailures.WithLabelValues(strings.TrimPrefix(hostile.URL, "http://"), "target_refused")); n != 1 {
				t.Errorf("wharf_upstream_failures_total{reason=target_refused} = %v, want 1", n)
			}
		})
	}
}

// TestInternalUpstreamMayRedirectInternally: the same answers from an
// upstream that is itself on 127.0.0.1 (the default, NetworkAuto) are
// followed: the operator's network is the upstream's.
func TestInternalUpstreamMayRedirectInternally(t *testing.T) {
	internal := internalService(t)
	hostile := newCounted(t, func(w http.ResponseWriter, r *http.Request) { redirectTo("/cdn")(w, r, internal.URL) })
	c := newClient(t, hostile.URL, nil)
	rc, _, err := c.GetBlob(t.Context(), "x/y", digest.FromString("layer"), 0)
	if err != nil {
		t.Fatalf("GetBlob: %v", err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "internal service: secret" {
		t.Errorf("body %q, %v", b, err)
	}
	if internal.hits.Load() != 1 {
		t.Errorf("the CDN was reached %d times, want 1", internal.hits.Load())
	}
}

func redirectTo(path string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, internal string) {
		http.Redirect(w, r, internal+path, http.StatusTemporaryRedirect)
	}
}

func getManifest(t *testing.T, c *upstream.Client) error {
	_, err := c.GetManifest(t.Context(), "x/y", "v1", acceptAll)
	return err
}

func getBlob(d digest.Digest) func(*testing.T, *upstream.Client) error {
	return func(t *testing.T, c *upstream.Client) error {
		rc, _, err := c.GetBlob(t.Context(), "x/y", d, 0)
		if err == nil {
			rc.Close()
		}
		return err
	}
}
