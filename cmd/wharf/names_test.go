package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/proxy"
)

// askedStore records what serve's router asks the store for, and has
// nothing: the seam between the router and the cache.
type askedStore struct {
	repo cache.Repo
	ref  string
	n    int
}

func (s *askedStore) ask(repo cache.Repo, ref string) {
	s.repo, s.ref = repo, ref
	s.n++
}

func (s *askedStore) Manifest(_ context.Context, repo cache.Repo, ref string, _ []string) (*cache.Manifest, error) {
	s.ask(repo, ref)
	return nil, cache.ErrNotFound
}

func (s *askedStore) Blob(_ context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error) {
	s.ask(repo, d.String())
	return nil, cache.ErrNotFound
}

func (s *askedStore) StatBlob(_ context.Context, repo cache.Repo, d digest.Digest) (int64, error) {
	s.ask(repo, d.String())
	return 0, cache.ErrNotFound
}

func (s *askedStore) Tags(_ context.Context, repo cache.Repo, _ int, _ string) ([]string, bool, error) {
	s.ask(repo, "")
	return nil, false, cache.ErrNotFound
}

func (s *askedStore) Catalog(context.Context) ([]cache.Repo, error) { return nil, nil }

// namingConfigs are the upstream setups the name table runs against, each
// loaded as serve loads it (a config file plus flags) and built into
// upstream clients as serve builds them.
var namingConfigs = map[string]struct {
	yaml  string
	flags []string
}{
	// Docker Hub the default; a named registry; one named with a port,
	// reached by its prefix.
	"hub": {"upstream:\n  url: https://registry-1.docker.io\nupstreams:\n" +
		"  - name: ghcr.io\n    url: https://ghcr.io\n" +
		"  - name: registry.local:5000\n    prefix: local\n    url: https://registry.local:5000\n", nil},
	// Another registry the default (no library/ rule), Docker Hub named,
	// one more with a prefix, given as serve's flags are.
	"site": {"upstream:\n  url: https://registry.site:5000\n",
		[]string{"--upstreams", "docker.io=https://registry-1.docker.io", "--upstreams", "quay.io=https://quay.io"}},
	// A Docker Hub stand-in as the default, with the library/ rule by flag.
	"gcr": {"upstream:\n  url: https://mirror.gcr.io\n", []string{"--upstream-official-library"}},
}

func namingSet(t *testing.T, name string) *proxy.UpstreamSet {
	t.Helper()
	c := namingConfigs[name]
	file := filepath.Join(t.TempDir(), "wharf.yaml")
	if err := os.WriteFile(file, []byte(c.yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWith(config.LoadOptions{Args: append([]string{"--config", file}, c.flags...), Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	ups, err := newUpstreams(cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ups.Close)
	return ups.set
}

// TestOneNameOneParser: serve's router and the parser of warm, export,
// import and the pins read every name alike. Each row is sent to serve's
// real handler (the store records what it is asked for) and given to
// proxy.ParseImage as an admin command's argument; both must reach the
// same upstream, path and reference, or both refuse it. Then the reverse:
// ClientName of what they reached reads back, through both, as the same
// repository.
func TestOneNameOneParser(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	long := strings.Repeat("a", 128) + "/" + strings.Repeat("b", 127) // 256 characters
	rows := []struct {
		cfg       string
		name, ref string // the request's /v2/<name>/manifests/<ref>
		ns        string // ?ns=; the admin name is then ns/name
		up, path  string // what both reach; "" when both refuse
		status    int    // the router's refusal
	}{
		// Docker Hub the default: library/ for one-component names.
		{"hub", "alpine", "3.20", "", "docker.io", "library/alpine", 0},
		{"hub", "library/alpine", "3.20", "", "docker.io", "library/alpine", 0},
		{"hub", "docker.io/alpine", "3.20", "", "docker.io", "library/alpine", 0},
		{"hub", "docker.io/library/alpine", d, "", "docker.io", "library/alpine", 0},
		{"hub", "team/app", "v1", "", "docker.io", "team/app", 0},
		{"hub", "ghcr.io/acme/app", "v1", "", "ghcr.io", "acme/app", 0},
		{"hub", "GHCR.io/acme/app", "v1", "", "ghcr.io", "acme/app", 0},
		{"hub", "ghcr.io/acme/app", d, "", "ghcr.io", "acme/app", 0},
		{"hub", "ghcr.io", "v1", "", "docker.io", "library/ghcr.io", 0}, // one component: never a registry
		{"hub", "local/team/app", "v1", "", "registry.local:5000", "team/app", 0},
		{"hub", "registry.local:5000/team/app", "v1", "", "registry.local:5000", "team/app", 0},
		{"hub", "acme/app", "v1", "ghcr.io", "ghcr.io", "acme/app", 0},
		{"hub", "team/app", "v1", "local", "registry.local:5000", "team/app", 0},
		{"hub", "alpine", "3.20", "docker.io", "docker.io", "library/alpine", 0},
		// ns names the registry, the whole name is the path below it.
		{"hub", "ghcr.io/x", "v1", "docker.io", "docker.io", "ghcr.io/x", 0},
		// A registry no upstream answers to is refused by both, not read
		// as a path on the default (see proxy.Resolve).
		{"hub", "quay.io/x", "v1", "", "", "", 404},
		{"hub", "localhost/x", "v1", "", "", "", 404},
		{"hub", "localhost:5000/x", "v1", "", "", "", 404},
		{"hub", "other.local:5000/team/app", d, "", "", "", 404},
		{"hub", "x", "v1", "quay.io", "", "", 404},
		// Bad names and references.
		{"hub", "Team/app", "v1", "", "", "", 400},
		{"hub", "team/App", "v1", "", "", "", 400},
		{"hub", "registry.local:5000/Team/app", "v1", "", "", "", 400},
		{"hub", "-a", "v1", "", "", "", 400},
		{"hub", "a/../b", "v1", "", "", "", 400},
		{"hub", "a//b", "v1", "", "", "", 400},
		{"hub", long, "v1", "", "", "", 400},
		{"hub", "team/app", ".bad", "", "", "", 400},
		{"hub", "team/app", "sha256:short", "", "", "", 400},

		// Another registry the default: library/ is a path like any other,
		// and a one-component name stays one.
		{"site", "big", "1", "", "registry.site:5000", "big", 0},
		{"site", "library/big", "1", "", "registry.site:5000", "library/big", 0},
		{"site", "registry.site:5000/library/big", "1", "", "registry.site:5000", "library/big", 0},
		{"site", "team/app", d, "", "registry.site:5000", "team/app", 0},
		// docker.io is an upstream of its own here, with Docker Hub's rule.
		{"site", "docker.io/alpine", "3", "", "docker.io", "library/alpine", 0},
		{"site", "docker.io/library/alpine", "3", "", "docker.io", "library/alpine", 0},
		{"site", "alpine", "3", "docker.io", "docker.io", "library/alpine", 0},
		{"site", "quay.io/org/tool", "v2", "", "quay.io", "org/tool", 0},
		{"site", "org/tool", "v2", "quay.io", "quay.io", "org/tool", 0},
		// A path on the default that starts like a registry: by ns or
		// with the default's name in front.
		{"site", "quay.io/x", "v1", "registry.site:5000", "registry.site:5000", "quay.io/x", 0},
		{"site", "ghcr.io/acme/app", "v1", "", "", "", 404},

		// A Docker Hub stand-in as the default: docker.io is its alias.
		{"gcr", "alpine", "3", "", "mirror.gcr.io", "library/alpine", 0},
		{"gcr", "docker.io/library/alpine", "3", "", "mirror.gcr.io", "library/alpine", 0},
		{"gcr", "docker.io/alpine", "3", "", "mirror.gcr.io", "library/alpine", 0},
		{"gcr", "alpine", "3", "docker.io", "mirror.gcr.io", "library/alpine", 0},
		{"gcr", "mirror.gcr.io/team/app", "v1", "", "mirror.gcr.io", "team/app", 0},
	}
	sets := map[string]*proxy.UpstreamSet{}
	for name := range namingConfigs {
		sets[name] = namingSet(t, name)
	}
	for _, r := range rows {
		set := sets[r.cfg]
		path := "/v2/" + r.name + "/manifests/" + r.ref
		admin := r.name
		if r.ns != "" {
			path += "?ns=" + r.ns
			admin = r.ns + "/" + r.name
		}
		if strings.HasPrefix(r.ref, "sha256:") {
			admin += "@" + r.ref
		} else {
			admin += ":" + r.ref
		}
		t.Run(r.cfg+" "+path, func(t *testing.T) {
			got, status := routeOf(t, set, path)
			img, err := proxy.ParseImage(set, admin)
			want := cache.Repo{Upstream: r.up, Path: r.path}
			if r.up == "" {
				if status != r.status {
					t.Errorf("router: %d %v, want a %d refusal", status, got, r.status)
				}
				if err == nil {
					t.Errorf("ParseImage(%q) = %v, want an error as the router's", admin, img)
				}
				var unknown *proxy.UnknownRegistryError
				if (r.status == 404) != errors.As(err, &unknown) {
					t.Errorf("ParseImage(%q): %v; an unknown registry is one for the router too", admin, err)
				}
				if unknown != nil && !strings.Contains(err.Error(), set.Names()[0]) {
					t.Errorf("ParseImage(%q): %v does not list the configured upstreams", admin, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseImage(%q): %v; the router reached %v", admin, err, got)
			}
			if got.repo != want || got.ref != r.ref {
				t.Errorf("router reached %v %q, want %v %q", got.repo, got.ref, want, r.ref)
			}
			if img.Repo != want || img.Ref() != r.ref {
				t.Errorf("ParseImage(%q) = %v, want %v %q (as the router)", admin, img, want, r.ref)
			}
			// The reverse reads back as the same repository, through both.
			back := proxy.ClientName(set, img.Repo)
			if again, err := proxy.ParseImage(set, back+":v1"); err != nil || again.Repo != want {
				t.Errorf("ParseImage(ClientName = %q) = %v, %v; want %v", back, again.Repo, err, want)
			}
			if again, _ := routeOf(t, set, "/v2/"+back+"/manifests/v1"); again.repo != want {
				t.Errorf("router on ClientName %q reached %v, want %v", back, again.repo, want)
			}
			// A pin of the name is of that repository too.
			if r.ns == "" && !strings.HasPrefix(r.ref, "sha256:") {
				p, err := pins([]string{admin}, set)
				if err != nil || len(p) != 1 || p[0].Repo != want || p[0].Tag != r.ref {
					t.Errorf("pins(%q) = %v, %v; want %v:%s", admin, p, err, want, r.ref)
				}
			}
		})
	}
}

type reached struct {
	repo cache.Repo
	ref  string
}

// routeOf sends a GET for path to serve's handler over set and returns what
// the store was asked for, or the status of a refusal before the store.
func routeOf(t *testing.T, set *proxy.UpstreamSet, path string) (reached, int) {
	t.Helper()
	st := &askedStore{}
	h, err := proxy.New(proxy.Options{Store: st, Upstreams: set, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if st.n == 0 {
		return reached{}, w.Code
	}
	return reached{st.repo, st.ref}, w.Code
}

func discardLogger() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

// TestParseImageDefaults: a name alone is its latest tag; a tag and a
// digest together keep both and the digest is what is fetched; a pin
// names a repository (every tag) or a tag, never a digest.
func TestParseImageDefaults(t *testing.T) {
	set := namingSet(t, "site")
	d := "sha256:" + strings.Repeat("b", 64)
	img, err := proxy.ParseImage(set, "team/app")
	if err != nil || img.Tag != "latest" || img.Digest != "" {
		t.Errorf("team/app: %+v %v, want tag latest", img, err)
	}
	img, err = proxy.ParseImage(set, "team/app:v1@"+d)
	if err != nil || img.Tag != "v1" || img.Ref() != d || img.String() != "registry.site:5000/team/app:v1@"+d {
		t.Errorf("team/app:v1@…: %+v %v", img, err)
	}
	p, err := pins([]string{"team/app", "docker.io/alpine:3"}, set)
	want := []cache.Pin{{Repo: cache.Repo{Upstream: "registry.site:5000", Path: "team/app"}},
		{Repo: cache.Repo{Upstream: "docker.io", Path: "library/alpine"}, Tag: "3"}}
	if err != nil || len(p) != 2 || p[0] != want[0] || p[1] != want[1] {
		t.Errorf("pins: %v %v, want %v", p, err, want)
	}
	for _, bad := range []string{"team/app@" + d, "ghcr.io/acme/app"} {
		if _, err := pins([]string{bad}, set); err == nil || !strings.Contains(err.Error(), "storage.pin") {
			t.Errorf("pin %q: %v, want a storage.pin error", bad, err)
		}
	}
}
