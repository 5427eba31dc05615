package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The attack suite: each test is a hole found by attacking wharf from
// outside, as a hostile client would, and fails on the code that had it.
// (Hostile upstreams: hostile_upstream_test.go; content scoping:
// scope_test.go; resource limits: limits_test.go.)

// refusal is the HTTP status and v2 code a go-containerregistry call
// failed with; 0 and "" when it succeeded or failed otherwise.
func refusal(err error) (int, string) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return 0, ""
	}
	code := ""
	if len(te.Errors) > 0 {
		code = string(te.Errors[0].Code)
	}
	return te.StatusCode, code
}

// TestMirroredNamesBelongToTheirUpstream: hole 1 (critical) and hole 9.
// A default wharf serve, run as a process with nothing but its upstream
// and data directory, is a read-only mirror: an anonymous push over a
// mirrored tag (or anywhere) and an anonymous delete are 401, and every
// pull still gets the upstream's image. With --anonymous-push (a lab),
// pushes of new names work but a push over a tag the upstream serves is
// 403 DENIED naming the upstream; only --upstream-shadow-tags lets it
// through.
func TestMirroredNamesBelongToTheirUpstream(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	alpine := upstreamtest.Push(t, reg, "library/alpine:3.20", upstreamtest.RandomImage(t, 1, 2048, upstreamtest.DockerManifest))
	pub := upstreamtest.Push(t, reg, "team/pub:1", upstreamtest.RandomImage(t, 1, 2048, upstreamtest.OCIManifest))
	bin := buildWharf(t)
	opts := []remote.Option{remote.WithAuth(authn.Anonymous)}
	ref := func(p *wharfProc, s string) name.Reference {
		r, err := name.ParseReference(p.addr+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	digestOf := func(p *wharfProc, s string) string {
		t.Helper()
		desc, err := remote.Head(ref(p, s), opts...)
		if err != nil {
			t.Fatalf("HEAD %s: %v", s, err)
		}
		return desc.Digest.String()
	}
	evil := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
	evilDigest := mustDigest(t, evil)
	push := func(p *wharfProc, s string) error { return remote.Write(ref(p, s), evil, opts...) }

	t.Run("default: read-only", func(t *testing.T) {
		p := startWharfProc(t, bin, t.TempDir(), reg.URL, "--log-level", "info")
		for _, s := range []string{"library/alpine:3.20", "team/pub:1", "team/new:1"} {
			if status, code := refusal(push(p, s)); status != http.StatusUnauthorized || code != "UNAUTHORIZED" {
				t.Errorf("anonymous push to %s: %d %s, want 401 UNAUTHORIZED", s, status, code)
			}
		}
		d, err := name.NewDigest(p.addr+"/library/alpine@"+alpine.Digest.String(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := refusal(remote.Delete(d, opts...)); status != http.StatusUnauthorized {
			t.Errorf("anonymous delete: %d, want 401", status)
		}
		if got := digestOf(p, "library/alpine:3.20"); got != alpine.Digest.String() {
			t.Errorf("library/alpine:3.20 is %s, want the upstream's %s", got, alpine.Digest)
		}
		if got := digestOf(p, "team/pub:1"); got != pub.Digest.String() {
			t.Errorf("team/pub:1 is %s, want the upstream's %s", got, pub.Digest)
		}
		p.stop(t) // the log is whole, and no longer written to, once wharf has exited
		if logs := p.logs.String(); !strings.Contains(logs, "read-only mirror") {
			t.Errorf("the start-up log does not say pushes are closed:\n%s", logs)
		}
	})

	t.Run("anonymous push: mirrored tags refused", func(t *testing.T) {
		p := startWharfProc(t, bin, t.TempDir(), reg.URL, "--anonymous-push")
		for _, s := range []string{"library/alpine:3.20", "team/pub:1"} {
			err := push(p, s)
			status, code := refusal(err)
			if status != http.StatusForbidden || code != "DENIED" || !strings.Contains(err.Error(), "mirrored from "+reg.Host) {
				t.Errorf("push over the mirrored %s: %v, want 403 DENIED naming %s", s, err, reg.Host)
			}
		}
		if err := push(p, "team/new:1"); err != nil {
			t.Errorf("push of a name the upstream does not serve: %v", err)
		}
		if got := digestOf(p, "team/new:1"); got != evilDigest {
			t.Errorf("team/new:1 is %s, want the pushed %s", got, evilDigest)
		}
		if got := digestOf(p, "library/alpine:3.20"); got != alpine.Digest.String() {
			t.Errorf("library/alpine:3.20 is %s after the refused push, want the upstream's %s", got, alpine.Digest)
		}
		p.stop(t)
		if logs := p.logs.String(); !strings.Contains(logs, "anonymous pushes and deletes are ON") {
			t.Errorf("the start-up log does not warn that pushes are open:\n%s", logs)
		}
	})

	t.Run("shadow tags: the operator's choice", func(t *testing.T) {
		p := startWharfProc(t, bin, t.TempDir(), reg.URL, "--anonymous-push", "--upstream-shadow-tags")
		defer p.stop(t)
		if err := push(p, "library/alpine:3.20"); err != nil {
			t.Fatalf("push with shadowTags on: %v", err)
		}
		if got := digestOf(p, "library/alpine:3.20"); got != evilDigest {
			t.Errorf("library/alpine:3.20 is %s, want the pushed %s", got, evilDigest)
		}
	})
}

// TestMirroredTagCheckFailsClosed: while the upstream cannot say whether
// it serves a tag, a first push of that tag is refused (5xx, retryable),
// a tag wharf has mirrored is refused as mirrored, and a tag already
// pushed here can still be moved. A writer with credentials meets the
// same rule as an anonymous one.
func TestMirroredTagCheckFailsClosed(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "site/app:cached", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	w := startPusher(t, faulty.URL, pushOpts{})
	opts := client(t)
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(w.Host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := remote.Head(ref("site/app:cached"), opts...); err != nil {
		t.Fatal(err) // now mirrored here
	}
	img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
	if err := remote.Write(ref("site/app:mine"), img, opts...); err != nil {
		t.Fatalf("first push of a new tag: %v", err)
	}
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
	})
	// Three 503s in a row mark the upstream down: 503 UNAVAILABLE, which
	// says so (a 502 while it is merely failing).
	if err := remote.Write(ref("site/app:new"), img, opts...); !hasRefusal(err, http.StatusServiceUnavailable, "UNAVAILABLE") {
		t.Errorf("new tag while the upstream is down: %v, want 503 UNAVAILABLE", err)
	}
	if err := remote.Write(ref("site/app:cached"), img, opts...); !hasRefusal(err, http.StatusForbidden, "DENIED") {
		t.Errorf("mirrored tag while the upstream is down: %v, want 403 DENIED", err)
	}
	again := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
	if err := remote.Write(ref("site/app:mine"), again, opts...); err != nil {
		t.Errorf("moving a tag pushed here while the upstream is down: %v", err)
	}
}

// TestRulesBindAnonymousClients: hole 4. With anonymous pulls and rules,
// a client without credentials gets only what a rule for "anonymous"
// grants: not another team's manifest, blob or tags, and the catalog does
// not list it.
func TestRulesBindAnonymousClients(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	secret := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
	accounts := newUsers(t, "alice", "alice-pw", "bob", "bob-pw")
	m := startMulti(t, multiOpts{
		def: namedUpstream{name: "docker.io", url: reg.URL},
		auth: &proxy.AuthOptions{Passwords: accounts, AnonymousPull: true, Rules: []proxy.Rule{
			{User: "alice", Prefix: "docker.io/alice", Write: true},
			{User: "bob", Prefix: "docker.io/bob", Write: true},
			{User: proxy.Anonymous, Prefix: "docker.io/public"},
		}},
	})
	alice := append(client(t), remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"}))
	if err := remote.Write(m.ref(t, "alice/secret:1"), secret, alice...); err != nil {
		t.Fatal(err)
	}
	layers, err := secret.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	d := mustDigest(t, secret)
	for _, path := range []string{
		"/v2/alice/secret/manifests/1", "/v2/alice/secret/manifests/" + d,
		"/v2/alice/secret/blobs/" + layer.String(), "/v2/alice/secret/tags/list",
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp := do(t, method, m.URL+path)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("anonymous %s %s: %d, want 401", method, path, resp.StatusCode)
			}
		}
	}
	registry, err := name.NewRegistry(m.Host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), registry, client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		if strings.HasPrefix(r, "alice/") {
			t.Errorf("the anonymous catalog lists %s", r)
		}
	}
	bob := append(client(t), remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-pw"}))
	if _, err := remote.Image(m.ref(t, "alice/secret:1"), bob...); err == nil {
		t.Error("bob read alice's image")
	}
}

func hasRefusal(err error, status int, code string) bool {
	s, c := refusal(err)
	return s == status && c == code
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
