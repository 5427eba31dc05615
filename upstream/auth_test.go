package upstream_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestAuth(t *testing.T) {
	basic := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("alice", "s3cret"))
	token := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	for _, reg := range []*upstreamtest.Registry{basic, token} {
		upstreamtest.Push(t, reg, "private/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest))
	}
	tests := []struct {
		name       string
		reg        *upstreamtest.Registry
		user, pass string
		wantErr    error
	}{
		{"basic, right credentials", basic, "alice", "s3cret", nil},
		{"basic, wrong password", basic, "alice", "wrong", upstream.ErrUnauthorized},
		{"basic, anonymous", basic, "", "", upstream.ErrUnauthorized},
		{"token, right credentials", token, "alice", "s3cret", nil},
		{"token, wrong password", token, "alice", "wrong", upstream.ErrUnauthorized},
		{"token, unknown user", token, "mallory", "s3cret", upstream.ErrUnauthorized},
		{"token, anonymous pull", token, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.reg.URL, func(o *upstream.Options) { o.Username, o.Password = tt.user, tt.pass })
			_, err := c.GetManifest(t.Context(), "private/app", "v1", acceptAll)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetManifest error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
				t.Errorf("the error reveals the password: %v", err)
			}
		})
	}
}

// TestTokenCached checks that a warm client reuses its token: one token
// fetch per scope, and one round trip per request once the token is known.
func TestTokenCached(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	img := upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest)
	desc := upstreamtest.Push(t, reg, "cached/app:v1", img)
	upstreamtest.Push(t, reg, "cached/other:v1", img)
	layer, _ := layerBytes(t, img)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	m := newMetrics()
	c := newClient(t, faulty.URL, func(o *upstream.Options) {
		o.Username, o.Password, o.Metrics = "alice", "s3cret", m
	})
	tokensBefore := reg.TokenRequests() // the pushes' own

	steps := []struct {
		name                   string
		call                   func() error
		wantRequests, wantToks int // registry requests and token fetches this step
	}{
		{"cold: challenge, token, retry", func() error {
			_, err := c.GetManifest(t.Context(), "cached/app", "v1", acceptAll)
			return err
		}, 2, 1},
		{"warm GET: one round trip", func() error {
			_, err := c.GetManifest(t.Context(), "cached/app", desc.Digest.String(), acceptAll)
			return err
		}, 1, 0},
		{"warm HEAD", func() error {
			_, err := c.HeadManifest(t.Context(), "cached/app", "v1", acceptAll)
			return err
		}, 1, 0},
		{"warm blob, same scope", func() error {
			_, err := c.HeadBlob(t.Context(), "cached/app", layer)
			return err
		}, 1, 0},
		{"another repository: a token of its own, fetched first", func() error {
			_, err := c.GetManifest(t.Context(), "cached/other", "v1", acceptAll)
			return err
		}, 1, 1},
	}
	for _, s := range steps {
		faulty.ResetCounts()
		toks := reg.TokenRequests()
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n := faulty.Count("", "/v2/"); n != s.wantRequests {
			t.Errorf("%s: %d registry requests, want %d", s.name, n, s.wantRequests)
		}
		if n := reg.TokenRequests() - toks; n != s.wantToks {
			t.Errorf("%s: %d token requests, want %d", s.name, n, s.wantToks)
		}
	}
	if n := reg.TokenRequests() - tokensBefore; n != 2 {
		t.Errorf("%d token requests in all, want 2", n)
	}
	if n := testutil.ToFloat64(m.UpstreamRequests.WithLabelValues(c.Name(), "token", "200")); n != 2 {
		t.Errorf("metrics counted %v token requests, want 2", n)
	}
}

// TestRefusedTokenIsRefetched: a cached token the registry refuses
// (revoked, expired early) is dropped and a fresh one fetched, within the
// same call.
func TestRefusedTokenIsRefetched(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "revoked/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL, func(o *upstream.Options) { o.Username, o.Password = "alice", "s3cret" })
	if _, err := c.GetManifest(t.Context(), "revoked/app", "v1", acceptAll); err != nil {
		t.Fatal(err)
	}
	// Refuse the next request that carries a token, as a registry would
	// a revoked one.
	var refused atomic.Bool
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:revoked/app:pull",error="invalid_token"`,
		reg.TokenRealm, reg.TokenService)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && refused.CompareAndSwap(false, true) {
			return upstreamtest.Fault{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}}
		}
		return upstreamtest.Fault{}
	})
	toks := reg.TokenRequests()
	if _, err := c.GetManifest(t.Context(), "revoked/app", "v1", acceptAll); err != nil {
		t.Fatalf("GetManifest after a refused token: %v", err)
	}
	if !refused.Load() {
		t.Fatal("the client did not attach its cached token")
	}
	if n := reg.TokenRequests() - toks; n != 1 {
		t.Errorf("%d token requests, want 1 (a fresh token)", n)
	}
}

// TestBasicAttachedAfterChallenge: once a registry asked for Basic
// credentials, later requests carry them from the start.
func TestBasicAttachedAfterChallenge(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "basic/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL, func(o *upstream.Options) { o.Username, o.Password = "alice", "s3cret" })
	for i, want := range []int{2, 1, 1} {
		faulty.ResetCounts()
		if _, err := c.HeadManifest(t.Context(), "basic/app", "v1", acceptAll); err != nil {
			t.Fatal(err)
		}
		if n := faulty.Count("", "/v2/"); n != want {
			t.Errorf("call %d: %d requests, want %d", i, n, want)
		}
	}
}

// TestTokenForChallengeScopeIsReused: when a registry's challenge names a
// scope other than the one the path implies, the token it led to is still
// attached to the next request on that path.
func TestTokenForChallengeScopeIsReused(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "share/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:share/app:pull repository:share/base:pull"`,
		reg.TokenRealm, reg.TokenService)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if r.Header.Get("Authorization") == "" {
			return upstreamtest.Fault{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}}
		}
		return upstreamtest.Fault{}
	})
	c := newClient(t, faulty.URL, func(o *upstream.Options) { o.Username, o.Password = "alice", "s3cret" })
	for i, want := range []int{2, 1} {
		faulty.ResetCounts()
		if _, err := c.HeadManifest(t.Context(), "share/app", "v1", acceptAll); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if n := faulty.Count("", "/v2/"); n != want {
			t.Errorf("call %d: %d requests, want %d", i, n, want)
		}
	}
}
