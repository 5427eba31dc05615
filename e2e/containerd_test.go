package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestContainerdResolverThroughDefaultHosts: containerd's own resolver,
// configured as a node would be, with one _default/hosts.toml pointing at
// wharf, resolves and fetches images of three registries through it. The
// ns= parameter is containerd's; that each registry's team/app:v1 comes
// back as that registry's image shows wharf routed by it.
func TestContainerdResolverThroughDefaultHosts(t *testing.T) {
	tr := startThree(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "_default"), 0o755); err != nil {
		t.Fatal(err)
	}
	// server: where containerd goes when every mirror fails; a closed
	// port here, so a wharf failure cannot reach the internet.
	hosts := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", freeAddr(t), tr.mirror.URL)
	if err := os.WriteFile(filepath.Join(root, "_default", "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(root)}),
	})
	for ref, from := range map[string]string{
		"docker.io/team/app:v1":           "hub",
		"ghcr.io/team/app:v1":             "ghcr.io",
		"registry.local:5000/team/app:v1": "registry.local:5000",
	} {
		t.Run(ref, func(t *testing.T) {
			before := map[string]int{"hub": len(tr.hub.Requests()), "ghcr.io": len(tr.ghcr.Requests()), "registry.local:5000": len(tr.site.Requests())}
			name, desc, err := resolver.Resolve(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != tr.want[from] {
				t.Fatalf("resolved %s to %s, want %s's %s", name, desc.Digest, from, tr.want[from])
			}
			fetcher, err := resolver.Fetcher(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(fetchVerified(ctx, t, fetcher, desc), &m); err != nil {
				t.Fatal(err)
			}
			for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				fetchVerified(ctx, t, fetcher, d)
			}
			after := map[string]int{"hub": len(tr.hub.Requests()), "ghcr.io": len(tr.ghcr.Requests()), "registry.local:5000": len(tr.site.Requests())}
			for up := range after {
				if moved := after[up] != before[up]; moved != (up == from) {
					t.Errorf("%s: %s saw %d requests", ref, up, after[up]-before[up])
				}
			}
		})
	}
	// A registry wharf does not mirror: refused, and nothing goes out.
	before := tr.outbound()
	if _, _, err := resolver.Resolve(ctx, "quay.io/team/app:v1"); err == nil {
		t.Error("quay.io/team/app:v1 resolved through a wharf that does not mirror quay.io")
	}
	if n := tr.outbound() - before; n != 0 {
		t.Errorf("%d requests reached an upstream for quay.io", n)
	}
}

// fetchVerified fetches desc with containerd's fetcher and checks its
// digest and size.
func fetchVerified(ctx context.Context, t *testing.T, f interface {
	Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error)
}, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	if digest.FromBytes(b) != desc.Digest || int64(len(b)) != desc.Size {
		t.Fatalf("fetched %d bytes hashing to %s, want %d and %s", len(b), digest.FromBytes(b), desc.Size, desc.Digest)
	}
	return b
}
