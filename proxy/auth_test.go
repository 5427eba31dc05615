package proxy

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/cache"
)

// passwords is an htpasswd file in memory.
type passwords map[string][]byte

func (p passwords) Hash(user string) ([]byte, bool) { h, ok := p[user]; return h, ok }

func hashOf(t testing.TB, pw string, cost int) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAccessControl walks the auth model as a table: who may do what, and
// what a client is told when it may not.
func TestAccessControl(t *testing.T) {
	users := passwords{
		"ci":  hashOf(t, "ci-pw", bcrypt.MinCost),
		"dev": hashOf(t, "dev-pw", bcrypt.MinCost),
		"ops": hashOf(t, "ops-pw", bcrypt.MinCost),
	}
	rules := []Rule{
		{User: "ci", Prefix: "docker.io/team", Write: true},
		{User: "dev", Prefix: "", Write: false},
		{User: "*", Prefix: "ghcr.io/public"},
		{User: Anonymous, Prefix: "docker.io/library"},
	}
	const open, locked = true, false
	cases := []struct {
		name         string
		anonymous    bool // AnonymousPull
		method, path string
		user, pw     string // "" anonymous
		kind         string // what the store is asked for; "" never reached
		status       int
		code         string
	}{
		{"ping without credentials is challenged (docker login)", open, "GET", "/v2/", "", "", "", 401, "UNAUTHORIZED"},
		{"ping with credentials", locked, "GET", "/v2/", "dev", "dev-pw", "", 200, ""},
		{"ping with a wrong password", locked, "GET", "/v2/", "dev", "nope", "", 401, "UNAUTHORIZED"},
		{"ping as an unknown user", locked, "GET", "/v2/", "eve", "dev-pw", "", 401, "UNAUTHORIZED"},
		{"anonymous pull allowed", open, "GET", "/v2/alpine/manifests/3", "", "", "manifest", 404, "MANIFEST_UNKNOWN"},
		{"anonymous pull outside the anonymous rule", open, "GET", "/v2/team/app/manifests/3", "", "", "", 401, "UNAUTHORIZED"},
		{"anonymous tags outside the anonymous rule", open, "GET", "/v2/team/app/tags/list", "", "", "", 401, "UNAUTHORIZED"},
		{"a rule for every user does not cover anonymous", open, "GET", "/v2/ghcr.io/public/x/manifests/1", "", "", "", 401, "UNAUTHORIZED"},
		{"anonymous pull refused", locked, "GET", "/v2/alpine/manifests/3", "", "", "", 401, "UNAUTHORIZED"},
		{"empty basic credentials are anonymous", open, "GET", "/v2/alpine/manifests/3", ":", "", "manifest", 404, ""},
		{"anonymous tags and catalog", open, "GET", "/v2/_catalog", "", "", "catalog", 200, ""},
		{"anonymous push refused", open, "POST", "/v2/team/app/blobs/uploads/", "", "", "", 401, "UNAUTHORIZED"},
		{"anonymous delete refused", open, "DELETE", "/v2/team/app/manifests/" + "sha256:" + strings.Repeat("a", 64), "", "", "", 401, "UNAUTHORIZED"},
		{"anonymous upload status refused", open, "GET", "/v2/team/app/blobs/uploads/00000000-0000-0000-0000-000000000000", "", "", "", 401, "UNAUTHORIZED"},
		{"wrong password even where anonymous may", open, "GET", "/v2/alpine/manifests/3", "dev", "nope", "", 401, "UNAUTHORIZED"},
		{"bearer is not ours", open, "GET", "/v2/alpine/manifests/3", "bearer", "", "", 401, "UNAUTHORIZED"},
		{"push within the prefix", locked, "POST", "/v2/team/app/blobs/uploads/", "ci", "ci-pw", "start", 202, ""},
		{"push outside the prefix", locked, "POST", "/v2/other/app/blobs/uploads/", "ci", "ci-pw", "", 403, "DENIED"},
		{"prefix is by component", locked, "POST", "/v2/team-b/app/blobs/uploads/", "ci", "ci-pw", "", 403, "DENIED"},
		{"write includes read", locked, "GET", "/v2/team/app/manifests/1", "ci", "ci-pw", "manifest", 404, ""},
		{"read everywhere", locked, "GET", "/v2/ghcr.io/acme/app/manifests/1", "dev", "dev-pw", "manifest", 404, ""},
		{"read is not write", locked, "PUT", "/v2/team/app/manifests/1", "dev", "dev-pw", "", 403, "DENIED"},
		{"read is not delete", locked, "DELETE", "/v2/team/app/manifests/1", "dev", "dev-pw", "", 403, "DENIED"},
		{"rule for every user", locked, "GET", "/v2/ghcr.io/public/x/manifests/1", "ops", "ops-pw", "manifest", 404, ""},
		{"rule for every user, elsewhere", locked, "GET", "/v2/ghcr.io/acme/x/manifests/1", "ops", "ops-pw", "", 403, "DENIED"},
		{"rules meet ns and prefix alike", locked, "GET", "/v2/public/x/manifests/1?ns=ghcr.io", "ops", "ops-pw", "manifest", 404, ""},
		{"library/ is applied before rules", locked, "GET", "/v2/team/manifests/1", "ci", "ci-pw", "", 403, "DENIED"},
		{"health is open", locked, "GET", "/healthz", "", "", "", 200, ""},
		{"unmatched paths need a user too", locked, "GET", "/nope", "", "", "", 401, "UNAUTHORIZED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &pushRecorder{}
			h, err := New(Options{Store: rec, Upstreams: threeUpstreams(t),
				Auth: &AuthOptions{Passwords: users, AnonymousPull: c.anonymous, Rules: rules}})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(c.method, c.path, nil)
			switch {
			case c.user == "bearer":
				req.Header.Set("Authorization", "Bearer abc")
			case c.user == ":":
				req.SetBasicAuth("", "")
			case c.user != "":
				req.SetBasicAuth(c.user, c.pw)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Errorf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if rec.kind != c.kind {
				t.Errorf("store asked for %q, want %q", rec.kind, c.kind)
			}
			if c.code != "" && !strings.Contains(w.Body.String(), `"code":"`+c.code+`"`) {
				t.Errorf("body %s, want code %s", w.Body, c.code)
			}
			if got := w.Header().Get("WWW-Authenticate"); (w.Code == 401) != (got == `Basic realm="wharf"`) {
				t.Errorf("status %d with WWW-Authenticate %q", w.Code, got)
			}
		})
	}
}

// TestCatalogShowsWhatUserMayRead: with rules, the catalog lists only the
// repositories the user may read.
func TestCatalogShowsWhatUserMayRead(t *testing.T) {
	st := &repoStore{repos: []cache.Repo{{Upstream: "docker.io", Path: "team/app"}, {Upstream: "ghcr.io", Path: "acme/app"}}}
	h, err := New(Options{Store: st, Upstreams: threeUpstreams(t), Auth: &AuthOptions{
		Passwords: passwords{"ci": hashOf(t, "pw", bcrypt.MinCost)},
		Rules:     []Rule{{User: "ci", Prefix: "docker.io/team/"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v2/_catalog", nil)
	req.SetBasicAuth("ci", "pw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if want := `{"repositories":["team/app"]}`; w.Body.String() != want {
		t.Errorf("catalog %s, want %s", w.Body, want)
	}
}

// TestCredentialsNeverLogged: the access log names the user, never the
// password or the Authorization header, for right and wrong passwords.
func TestCredentialsNeverLogged(t *testing.T) {
	var out bytes.Buffer
	log := logrus.New()
	log.SetOutput(&out)
	log.SetFormatter(&logrus.JSONFormatter{})
	h, err := New(Options{Store: &recorder{}, Upstream: hub{}, Logger: log,
		Auth: &AuthOptions{Passwords: passwords{"alice": hashOf(t, "correct-horse", bcrypt.MinCost)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"correct-horse", "battery-staple"} {
		req := httptest.NewRequest("GET", "/v2/alpine/manifests/3", nil)
		req.SetBasicAuth("alice", pw)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	logged := out.String()
	for _, secret := range []string{"correct-horse", "battery-staple", "Basic ", "YWxpY2"} {
		if strings.Contains(logged, secret) {
			t.Errorf("log contains %q:\n%s", secret, logged)
		}
	}
	if !strings.Contains(logged, `"user":"alice"`) {
		t.Errorf("access log does not name the user:\n%s", logged)
	}
}

// TestVerifiedPasswordsAreRemembered: bcrypt runs once per user and
// password for RememberFor, not once per request; a changed hash (the
// file edited) is verified afresh.
func TestVerifiedPasswordsAreRemembered(t *testing.T) {
	now := time.Unix(1000, 0)
	users := passwords{"alice": hashOf(t, "pw", bcrypt.DefaultCost)}
	a, err := newAuthenticator(AuthOptions{Passwords: users, RememberFor: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	timed := func(pw string) (bool, time.Duration) {
		start := time.Now()
		ok, _ := a.verify(context.Background(), "alice", pw)
		return ok, time.Since(start)
	}
	ok, first := timed("pw")
	if !ok {
		t.Fatal("right password refused")
	}
	ok, second := timed("pw")
	if !ok || second > first/10 {
		t.Errorf("second check took %v after a first of %v: not remembered", second, first)
	}
	if ok, _ := timed("wrong"); ok {
		t.Error("wrong password accepted after a right one")
	}
	now = now.Add(2 * time.Minute)
	if ok, third := timed("pw"); !ok || third < first/10 {
		t.Errorf("after RememberFor: %v in %v, want a fresh bcrypt check", ok, third)
	}
	users["alice"] = hashOf(t, "new", bcrypt.MinCost)
	if ok, _ := timed("pw"); ok {
		t.Error("old password accepted after the file changed")
	}
}
