package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestReadmeSiteExampleWorksAsDescribed runs the README's worked access
// control example (a site publishing its own images next to mirrored
// ones) as `wharf serve --config`, with two real registries standing in
// for Docker Hub and the site's registry, and checks every claim the
// README makes about it.
func TestReadmeSiteExampleWorksAsDescribed(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The block after the lead (and the docs check's marker).
	const lead, fence = "A site that publishes its own images next to mirrored ones:", "```yaml\n"
	i := strings.Index(string(readme), lead)
	j := strings.Index(string(readme[max(i, 0):]), fence)
	if i < 0 || j < 0 {
		t.Fatal("README has no worked access-control example")
	}
	yaml := string(readme[i+j+len(fence):])
	yaml = yaml[:strings.Index(yaml, "```")]

	hub := upstreamtest.NewRegistry(t)
	site := upstreamtest.NewRegistry(t)
	alpine := upstreamtest.Push(t, hub, "library/alpine:3.20", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
	upstreamtest.Push(t, hub, "acme/web:1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	upstreamtest.Push(t, site, "public/app:1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	upstreamtest.Push(t, site, "private/db:1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))

	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	var lines []string
	for _, u := range []string{"ci", "alice", "ops"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u+":"+string(h))
	}
	if err := os.WriteFile(htpasswd, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The registries' real addresses; Docker Hub's name is kept.
	yaml = strings.NewReplacer(
		"url: https://registry-1.docker.io", "url: "+hub.URL+"\n  name: docker.io",
		"https://registry.acme.internal", site.URL,
		"/etc/wharf/htpasswd", htpasswd,
	).Replace(yaml)
	cfg := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := serveArgs(t, "--config", cfg, "--data", filepath.Join(dir, "data"))

	as := func(user string) []remote.Option {
		if user == "" {
			return []remote.Option{remote.WithAuth(authn.Anonymous)}
		}
		return []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: user + "-pw"})}
	}
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(addr+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pull := func(user, s string) error { _, err := remote.Image(ref(s), as(user)...); return err }
	push := func(user, s string) error {
		return remote.Write(ref(s), upstreamtest.RandomImage(t, 1, 512, upstreamtest.OCIManifest), as(user)...)
	}
	cases := []struct {
		claim  string
		do     func() error
		status int // 0: success
	}{
		{"every node pulls Docker Hub without credentials", func() error { return pull("", "library/alpine:3.20") }, 0},
		{"…and the site's public images", func() error { return pull("", "registry.acme.internal/public/app:1") }, 0},
		{"but not its internal ones", func() error { return pull("", "registry.acme.internal/private/db:1") }, 401},
		{"ops reads everything", func() error { return pull("ops", "registry.acme.internal/private/db:1") }, 0},
		{"ops pushes nothing", func() error { return push("ops", "acme/ops:1") }, 403},
		{"ci publishes docker.io/acme/*", func() error { return push("ci", "acme/tool:1") }, 0},
		{"ci publishes on the site's registry (written through)", func() error { return push("ci", "registry.acme.internal/public/app:1") }, 0},
		{"alice pushes acme/web", func() error { return push("alice", "acme/web:2") }, 0},
		{"alice pushes nothing else", func() error { return push("alice", "acme/tool:2") }, 403},
		{"nobody, ci included, pushes over a tag Docker Hub serves", func() error { return push("ci", "acme/web:1") }, 403},
		{"…nor over library/", func() error { return push("ci", "library/alpine:3.20") }, 403},
	}
	for _, c := range cases {
		err := c.do()
		var te *transport.Error
		switch {
		case c.status == 0 && err != nil:
			t.Errorf("%s: %v", c.claim, err)
		case c.status != 0 && (!errors.As(err, &te) || te.StatusCode != c.status):
			t.Errorf("%s: %v, want HTTP %d", c.claim, err, c.status)
		}
	}
	desc, err := remote.Head(ref("library/alpine:3.20"), as("")...)
	if err != nil || desc.Digest.String() != alpine.Digest.String() {
		t.Errorf("library/alpine:3.20 after the refused pushes: %v %v, want the upstream's %s", desc, err, alpine.Digest)
	}
	reg, err := name.NewRegistry(addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"", "ops"} {
		repos, err := remote.Catalog(t.Context(), reg, as(user)...)
		if err != nil {
			t.Fatalf("catalog as %q: %v", user, err)
		}
		listed := strings.Contains(strings.Join(repos, " "), "private/db")
		if listed != (user == "ops") {
			t.Errorf("catalog as %q lists private/db: %v (%v)", user, listed, repos)
		}
	}
}
