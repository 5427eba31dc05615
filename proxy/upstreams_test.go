package proxy

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// repoStore records the repository (upstream and path) a request reached,
// and lists a fixed catalog.
type repoStore struct {
	asked []cache.Repo
	repos []cache.Repo
}

func (s *repoStore) Manifest(_ context.Context, repo cache.Repo, _ string, _ []string) (*cache.Manifest, error) {
	s.asked = append(s.asked, repo)
	return nil, cache.ErrNotFound
}

func (s *repoStore) Blob(_ context.Context, repo cache.Repo, _ digest.Digest) (*cache.Blob, error) {
	s.asked = append(s.asked, repo)
	return nil, cache.ErrNotFound
}

func (s *repoStore) StatBlob(_ context.Context, repo cache.Repo, _ digest.Digest) (int64, error) {
	s.asked = append(s.asked, repo)
	return 0, cache.ErrNotFound
}

func (s *repoStore) Tags(_ context.Context, repo cache.Repo, _ int, _ string) ([]string, bool, error) {
	s.asked = append(s.asked, repo)
	return []string{}, false, nil
}

func (s *repoStore) Catalog(context.Context) ([]cache.Repo, error) { return s.repos, nil }

// plain is an upstream without naming rules.
type plain string

func (p plain) Name() string                  { return string(p) }
func (p plain) Repository(path string) string { return path }

func threeUpstreams(t *testing.T) *UpstreamSet {
	t.Helper()
	set, err := NewUpstreamSet(hub{}, plain("ghcr.io"), Prefixed{plain("registry.local:5000"), "local"})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestRoutingByUpstream: ?ns= first, then a registry prefix, then the
// default; an ns nobody is configured for never reaches the store.
func TestRoutingByUpstream(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	cases := []struct {
		method, path string
		up, repo     string // what the store is asked for; "" never reached
		status       int
		code         string
	}{
		{"GET", "/v2/alpine/manifests/3", "docker.io", "library/alpine", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/acme/app/manifests/1?ns=ghcr.io", "ghcr.io", "acme/app", 404, ""},
		{"GET", "/v2/acme/app/manifests/1?ns=GHCR.io", "ghcr.io", "acme/app", 404, ""},
		{"GET", "/v2/alpine/manifests/3?ns=docker.io", "docker.io", "library/alpine", 404, ""},
		{"GET", "/v2/ghcr.io/acme/app/manifests/1", "ghcr.io", "acme/app", 404, ""},
		{"HEAD", "/v2/registry.local:5000/team/app/blobs/" + d, "registry.local:5000", "team/app", 404, ""},
		{"GET", "/v2/team/app/blobs/" + d + "?ns=registry.local:5000", "registry.local:5000", "team/app", 404, ""},
		{"GET", "/v2/ghcr.io/acme/app/tags/list", "ghcr.io", "acme/app", 200, ""},
		// ns wins over a prefix: containerd names the path below the registry.
		{"GET", "/v2/ghcr.io/x/manifests/1?ns=docker.io", "docker.io", "ghcr.io/x", 404, ""},
		// A registry nobody is configured for is refused, not read as a
		// path on the default (see Resolve); ?ns= or the default's name
		// reach such a path.
		{"GET", "/v2/quay.io/x/manifests/1", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/localhost/x/manifests/1", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/docker.io/quay.io/x/manifests/1", "docker.io", "quay.io/x", 404, ""},
		// The one-component name "ghcr.io" is not a prefix.
		{"GET", "/v2/ghcr.io/manifests/1", "docker.io", "library/ghcr.io", 404, ""},
		{"GET", "/v2/x/manifests/1?ns=quay.io", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/x/blobs/" + d + "?ns=quay.io", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/x/tags/list?ns=quay.io", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/registry.local:5000/Team/app/manifests/1", "", "", 400, "NAME_INVALID"},
		// The prefix "local" stands for registry.local:5000, under its name.
		{"GET", "/v2/local/team/app/manifests/1", "registry.local:5000", "team/app", 404, "MANIFEST_UNKNOWN"},
		{"HEAD", "/v2/local/team/app/blobs/" + d, "registry.local:5000", "team/app", 404, ""},
		{"GET", "/v2/local/team/app/tags/list", "registry.local:5000", "team/app", 200, ""},
		{"GET", "/v2/team/app/manifests/1?ns=local", "registry.local:5000", "team/app", 404, ""},
		// Only the whole first component is the prefix; a one-component
		// name is a path on the default, as for registry names.
		{"GET", "/v2/locals/app/manifests/1", "docker.io", "locals/app", 404, ""},
		{"GET", "/v2/local/manifests/1", "docker.io", "library/local", 404, ""},
		{"GET", "/v2/local/Team/manifests/1", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/ghcr.io/a:1/manifests/1", "", "", 400, "NAME_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			st := &repoStore{}
			h, err := New(Options{Store: st, Upstreams: threeUpstreams(t)})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
			if w.Code != c.status {
				t.Errorf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			var want []cache.Repo
			if c.up != "" {
				want = []cache.Repo{{Upstream: c.up, Path: c.repo}}
			}
			if !reflect.DeepEqual(st.asked, want) {
				t.Errorf("store asked for %v, want %v", st.asked, want)
			}
			if c.code != "" && !strings.Contains(w.Body.String(), `"code":"`+c.code+`"`) {
				t.Errorf("body %s, want code %s", w.Body, c.code)
			}
		})
	}
}

// TestCatalogNamesEveryUpstream: the default's repositories by path, the
// others' with their prefix (a name with a port is no reference a client
// can parse) or else their registry name, in order; those of an upstream no
// longer configured are left out.
func TestCatalogNamesEveryUpstream(t *testing.T) {
	st := &repoStore{repos: []cache.Repo{
		{Upstream: "docker.io", Path: "library/alpine"},
		{Upstream: "ghcr.io", Path: "acme/app"},
		{Upstream: "registry.local:5000", Path: "team/app"},
		{Upstream: "gone.example", Path: "old/app"},
		{Upstream: "docker.io", Path: "zeta/app"},
	}}
	h, err := New(Options{Store: st, Upstreams: threeUpstreams(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/_catalog", nil))
	var body struct{ Repositories []string }
	json.Unmarshal(w.Body.Bytes(), &body)
	want := []string{"ghcr.io/acme/app", "library/alpine", "local/team/app", "zeta/app"}
	if !reflect.DeepEqual(body.Repositories, want) {
		t.Errorf("catalog %q, want %q", body.Repositories, want)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/_catalog?n=2&last=library/alpine", nil))
	json.Unmarshal(w.Body.Bytes(), &body)
	if want := []string{"local/team/app", "zeta/app"}; !reflect.DeepEqual(body.Repositories, want) {
		t.Errorf("catalog page %q, want %q", body.Repositories, want)
	}
}

// TestDefaultAnswersToDockerHub: ns=docker.io reaches the default
// upstream whatever its name, under that name; a named docker.io wins.
func TestDefaultAnswersToDockerHub(t *testing.T) {
	for _, c := range []struct {
		set  func() (*UpstreamSet, error)
		want string
	}{
		{func() (*UpstreamSet, error) { return NewUpstreamSet(plain("registry.site:5000"), plain("ghcr.io")) }, "registry.site:5000"},
		{func() (*UpstreamSet, error) { return NewUpstreamSet(plain("registry.site:5000"), plain("docker.io")) }, "docker.io"},
	} {
		set, err := c.set()
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/v2/team/app/manifests/1?ns=docker.io", "/v2/docker.io/team/app/manifests/1"} {
			st := &repoStore{}
			h, _ := New(Options{Store: st, Upstreams: set})
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
			if want := []cache.Repo{{Upstream: c.want, Path: "team/app"}}; !reflect.DeepEqual(st.asked, want) {
				t.Errorf("%s: store asked for %v, want %v", path, st.asked, want)
			}
		}
	}
}

// TestPrefixMeetsNameInCache: the prefix, the name as a path prefix and
// ?ns= resolve to one cache.Repo, so they share its cache entries and its
// access rules.
func TestPrefixMeetsNameInCache(t *testing.T) {
	set := threeUpstreams(t)
	var got []cache.Repo
	for _, path := range []string{
		"/v2/local/team/app/manifests/1",
		"/v2/registry.local:5000/team/app/manifests/1",
		"/v2/team/app/manifests/1?ns=registry.local:5000",
	} {
		st := &repoStore{}
		h, err := New(Options{Store: st, Upstreams: set})
		if err != nil {
			t.Fatal(err)
		}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		if len(st.asked) != 1 {
			t.Fatalf("%s: store asked for %v", path, st.asked)
		}
		got = append(got, st.asked[0])
	}
	want := cache.Repo{Upstream: "registry.local:5000", Path: "team/app"}
	for i, r := range got {
		if r != want {
			t.Errorf("request %d reached %v, want %v", i, r, want)
		}
	}
	if names := set.Names(); !reflect.DeepEqual(names, []string{"docker.io", "ghcr.io", "registry.local:5000"}) {
		t.Errorf("names %q: a prefix is an alias, not an upstream", names)
	}
}

// TestUpstreamSetRefusesBadPrefixes: a prefix is one lower-case path
// component that no other upstream answers to.
func TestUpstreamSetRefusesBadPrefixes(t *testing.T) {
	for _, c := range []struct {
		name string
		more []Upstream
	}{
		{"two path components", []Upstream{Prefixed{plain("registry.local:5000"), "a/b"}}},
		{"upper case", []Upstream{Prefixed{plain("registry.local:5000"), "Local"}}},
		{"a port", []Upstream{Prefixed{plain("registry.local:5000"), "local:5000"}}},
		{"another upstream's name", []Upstream{plain("ghcr.io"), Prefixed{plain("registry.local:5000"), "ghcr.io"}}},
		{"a name listed later", []Upstream{Prefixed{plain("registry.local:5000"), "ghcr.io"}, plain("ghcr.io")}},
		{"its own name", []Upstream{Prefixed{plain("localhost"), "localhost"}}},
		{"the docker.io alias", []Upstream{Prefixed{plain("registry.local:5000"), "docker.io"}}},
		{"another's prefix", []Upstream{Prefixed{plain("a.example"), "x"}, Prefixed{plain("b.example"), "x"}}},
	} {
		if _, err := NewUpstreamSet(hub{}, c.more...); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, err := NewUpstreamSet(hub{}, Prefixed{plain("registry.local:5000"), "local"}, Prefixed{plain("ghcr.io"), ""}); err != nil {
		t.Errorf("a good prefix and an empty one: %v", err)
	}
}

func TestUpstreamSetRefusesDuplicates(t *testing.T) {
	if _, err := NewUpstreamSet(hub{}, plain("ghcr.io"), plain("GHCR.IO")); err == nil {
		t.Error("two upstreams named ghcr.io accepted")
	}
	if _, err := NewUpstreamSet(hub{}, plain("docker.io")); err == nil {
		t.Error("a second docker.io accepted")
	}
}
