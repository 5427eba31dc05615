package e2e

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// users is an htpasswd file in memory (cmd/wharf reads the real file).
type users map[string][]byte

func (u users) Hash(user string) ([]byte, bool) { h, ok := u[user]; return h, ok }

func newUsers(t *testing.T, pairs ...string) users {
	t.Helper()
	u := users{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(pairs[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		u[pairs[i]] = h
	}
	return u
}

// TestBasicAuthWithRealClient drives go-containerregistry, which answers
// wharf's Basic challenge as docker and crane do, through the auth model:
// right and wrong passwords, anonymous pulls allowed and refused, pushes
// only for users, and per-user rules by repository prefix.
func TestBasicAuthWithRealClient(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "library/alpine:3", upstreamtest.RandomImage(t, 1, 2048, upstreamtest.DockerManifest))
	upstreamtest.Push(t, reg, "team/app:v1", upstreamtest.RandomImage(t, 1, 2048, upstreamtest.OCIManifest))
	accounts := newUsers(t, "ci", "ci-secret", "dev", "dev-secret")
	rules := []proxy.Rule{
		{User: "ci", Prefix: "docker.io/team", Write: true},
		{User: "dev", Prefix: ""},
		{User: proxy.Anonymous, Prefix: "docker.io/library"},
	}
	start := func(anonymous bool) *multiMirror {
		return startMulti(t, multiOpts{
			def:  namedUpstream{name: "docker.io", url: reg.URL, officialLibrary: true},
			auth: &proxy.AuthOptions{Passwords: accounts, AnonymousPull: anonymous, Rules: rules},
		})
	}
	open, locked := start(true), start(false)
	as := func(a authn.Authenticator) []remote.Option { return append(client(t), remote.WithAuth(a)) }
	ci := as(&authn.Basic{Username: "ci", Password: "ci-secret"})
	dev := as(&authn.Basic{Username: "dev", Password: "dev-secret"})
	wrong := as(&authn.Basic{Username: "dev", Password: "guess"})
	anon := as(authn.Anonymous)

	pull := func(m *multiMirror, ref string, opts []remote.Option) error {
		img, err := remote.Image(m.ref(t, ref), opts...)
		if err == nil {
			err = validate.Image(img)
		}
		return err
	}
	push := func(m *multiMirror, ref string, opts []remote.Option) error {
		return remote.Write(m.ref(t, ref), upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest), opts...)
	}
	cases := []struct {
		name   string
		do     func() error
		status int // 0: success
	}{
		{"anonymous pull, allowed", func() error { return pull(open, "alpine:3", anon) }, 0},
		{"anonymous pull, refused", func() error { return pull(locked, "alpine:3", anon) }, 401},
		{"anonymous pull outside the anonymous rule", func() error { return pull(open, "team/app:v1", anon) }, 401},
		{"user pull", func() error { return pull(locked, "alpine:3", dev) }, 0},
		{"wrong password", func() error { return pull(locked, "alpine:3", wrong) }, 401},
		{"wrong password where anonymous may pull", func() error { return pull(open, "alpine:3", wrong) }, 401},
		{"anonymous push", func() error { return push(open, "team/new:v1", anon) }, 401},
		{"push within the user's prefix", func() error { return push(locked, "team/new:v1", ci) }, 0},
		{"pull back what was pushed", func() error { return pull(locked, "team/new:v1", dev) }, 0},
		{"push outside the user's prefix", func() error { return push(locked, "other/new:v1", ci) }, 403},
		{"read-only user pushes", func() error { return push(locked, "team/new:v2", dev) }, 403},
		{"pull outside the writer's prefix", func() error { return pull(locked, "alpine:3", ci) }, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			var te *transport.Error
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("want success, got %v", err)
			case c.status != 0 && (!errors.As(err, &te) || te.StatusCode != c.status):
				t.Fatalf("want HTTP %d, got %v", c.status, err)
			}
		})
	}

	// The challenge docker login reads.
	resp := get(t, locked.URL+"/v2/")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="wharf"` {
		t.Errorf("GET /v2/: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
