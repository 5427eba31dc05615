package upstream_test

import (
	"errors"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestRepositoryOfficialLibrary(t *testing.T) {
	hub := newClient(t, "https://registry-1.docker.io", func(o *upstream.Options) { o.OfficialLibrary = true })
	other := newClient(t, "https://ghcr.io", nil)
	tests := []struct {
		in, hub, other string
	}{
		{"alpine", "library/alpine", "alpine"},
		{"library/alpine", "library/alpine", "library/alpine"},
		{"bitnami/redis", "bitnami/redis", "bitnami/redis"},
		{"a/b/c", "a/b/c", "a/b/c"},
		{"library", "library/library", "library"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := hub.Repository(tt.in); got != tt.hub {
			t.Errorf("Docker Hub: Repository(%q) = %q, want %q", tt.in, got, tt.hub)
		}
		if got := hub.Repository(hub.Repository(tt.in)); got != tt.hub {
			t.Errorf("Docker Hub: Repository is not idempotent on %q: %q", tt.in, got)
		}
		if got := other.Repository(tt.in); got != tt.other {
			t.Errorf("other: Repository(%q) = %q, want %q", tt.in, got, tt.other)
		}
	}
}

// TestOfficialLibraryRequests checks that the methods apply the rule: a
// registry holding library/alpine answers for "alpine".
func TestOfficialLibraryRequests(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	want := upstreamtest.Push(t, reg, "library/alpine:3", upstreamtest.RandomImage(t, 1, 128, upstreamtest.OCIManifest))
	c := newClient(t, reg.URL, func(o *upstream.Options) { o.OfficialLibrary = true })
	for _, repo := range []string{"alpine", "library/alpine"} {
		d, err := c.HeadManifest(t.Context(), repo, "3", acceptAll)
		if err != nil || d.Digest != want.Digest {
			t.Errorf("HeadManifest(%q) = %v, %v; want %s", repo, d.Digest, err, want.Digest)
		}
		if tags, _, err := c.Tags(t.Context(), repo, 0, ""); err != nil || len(tags) != 1 {
			t.Errorf("Tags(%q) = %v, %v", repo, tags, err)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct{ url, name, want string }{
		{"https://registry-1.docker.io", "", "docker.io"},
		{"https://index.docker.io/", "", "docker.io"},
		{"https://REGISTRY-1.docker.io:443", "", "docker.io"},
		{"https://registry-1.docker.io:5000", "", "registry-1.docker.io:5000"},
		{"http://127.0.0.1:5001", "", "127.0.0.1:5001"},
		{"https://ghcr.io", "", "ghcr.io"},
		{"https://ghcr.io", "github", "github"},
	}
	for _, tt := range tests {
		c := newClient(t, tt.url, func(o *upstream.Options) { o.Name = tt.name })
		if got := c.Name(); got != tt.want {
			t.Errorf("Name for %q = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestNewValidatesURL(t *testing.T) {
	bad := []string{
		"", "registry-1.docker.io", "ftp://example.com", "https://", "https:///v2",
		"https://user:pass@example.com", "https://example.com/?x=1", "://nope",
	}
	for _, u := range bad {
		c, err := upstream.New(upstream.Options{URL: u})
		if err == nil {
			_ = c.Close()
			t.Errorf("New(%q) succeeded, want an error", u)
		}
	}
}

// TestPathPrefix: a base URL with a path keeps it before /v2/.
func TestPathPrefix(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL+"/mirror/", nil)
	_, err := c.HeadManifest(t.Context(), "prefixed/app", "v1", acceptAll)
	// distribution serves /v2/ at the root, so the prefixed path 404s:
	// what matters is where the request went.
	if !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("error = %v, want ErrNotFound", err)
	}
	if n := faulty.Count("HEAD", "/mirror/v2/prefixed/app/manifests/v1"); n != 1 {
		t.Errorf("requests to /mirror/v2/prefixed/app/manifests/v1: %d, want 1 (saw %+v)", n, faulty.Requests())
	}
}
