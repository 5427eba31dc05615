package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPullThroughUpstreamPrefix: an upstream named with a port is pulled
// by go-containerregistry through its prefix (the name itself is not a
// reference clients can parse), and the image lands under the upstream's
// name, where ?ns= and the name prefix find it with the upstream gone.
func TestPullThroughUpstreamPrefix(t *testing.T) {
	def, site := upstreamtest.NewRegistry(t), upstreamtest.NewRegistry(t)
	want := upstreamtest.Push(t, site, "team/app:1", upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest)).Digest
	cfg := filepath.Join(t.TempDir(), "wharf.yaml")
	yaml := "upstream:\n  url: " + def.URL + "\nupstreams:\n  - name: registry.local:5000\n    prefix: local\n    url: " + site.URL +
		"\nstorage:\n  dir: " + t.TempDir() + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, _ := serveArgs(t, "--config", cfg)

	if _, err := name.ParseReference(addr + "/registry.local:5000/team/app:1"); err == nil {
		t.Fatal("a registry with a port parsed as a path component; the prefix would not be needed")
	}
	ref, err := name.ParseReference(addr + "/local/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, ref, hashOf(t, want))

	site.Close()
	for _, path := range []string{
		"/v2/team/app/manifests/" + want.String() + "?ns=registry.local:5000",
		"/v2/registry.local:5000/team/app/manifests/" + want.String(),
		"/v2/local/team/app/manifests/" + want.String(),
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != want.String() {
			t.Errorf("GET %s with the upstream gone: %d %q, want the cached %s", path, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want)
		}
	}
}
