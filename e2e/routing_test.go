package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// threeRegistries is a wharf mirroring three real registries, each behind
// a Faulty that counts what reaches it: "hub" the default (Docker Hub's
// stand-in, library/ rule on), ghcr.io and registry.local:5000. Each holds
// an image under the same repository name, team/app:v1, and they differ.
type threeRegistries struct {
	mirror          *multiMirror
	hub, ghcr, site *upstreamtest.Faulty
	want            map[string]string // upstream → digest of its team/app:v1
}

func startThree(t *testing.T) *threeRegistries {
	t.Helper()
	tr := &threeRegistries{want: map[string]string{}}
	regs := map[string]*upstreamtest.Faulty{}
	for _, n := range []string{"hub", "ghcr.io", "registry.local:5000"} {
		reg := upstreamtest.NewRegistry(t)
		d := upstreamtest.Push(t, reg, "team/app:v1", upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest)).Digest
		upstreamtest.Push(t, reg, "library/alpine:3", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
		tr.want[n] = d.String()
		regs[n] = upstreamtest.NewFaulty(t, reg.URL)
	}
	tr.hub, tr.ghcr, tr.site = regs["hub"], regs["ghcr.io"], regs["registry.local:5000"]
	tr.mirror = startMulti(t, multiOpts{
		def: namedUpstream{url: tr.hub.URL, officialLibrary: true},
		named: []namedUpstream{
			{name: "ghcr.io", url: tr.ghcr.URL},
			{name: "registry.local:5000", url: tr.site.URL},
		},
	})
	return tr
}

func (tr *threeRegistries) outbound() int {
	return len(tr.hub.Requests()) + len(tr.ghcr.Requests()) + len(tr.site.Requests())
}

// TestRoutingToSeveralUpstreams: the same repository name under three
// upstreams is three images, and ?ns=, a registry prefix and the default
// each reach the right registry, pulled and validated with a real client.
func TestRoutingToSeveralUpstreams(t *testing.T) {
	tr := startThree(t)
	hubName := tr.hub.Host
	cases := []struct {
		name, ref, query, from string
	}{
		{"default", "team/app:v1", "", "hub"},
		{"ns=docker.io is the default", "team/app:v1", "docker.io", "hub"},
		{"ns=ghcr.io", "team/app:v1", "ghcr.io", "ghcr.io"},
		{"ns with a port", "team/app:v1", "registry.local:5000", "registry.local:5000"},
		{"prefix ghcr.io", "ghcr.io/team/app:v1", "", "ghcr.io"},
		{"prefix docker.io", "docker.io/team/app:v1", "", "hub"},
		{"default's own name as ns", "team/app:v1", hubName, "hub"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := client(t)
			if c.query != "" {
				opts = append(opts, remote.WithTransport(withQuery(t, "ns", c.query)))
			}
			img, err := remote.Image(tr.mirror.ref(t, c.ref), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatal(err)
			}
			if d, _ := img.Digest(); d.String() != tr.want[c.from] {
				t.Errorf("%s gave %s, want %s's %s", c.ref, d, c.from, tr.want[c.from])
			}
		})
	}
	// A prefix with a port is no valid image reference for a client, but
	// the API path carries it.
	resp := get(t, tr.mirror.URL+"/v2/registry.local:5000/team/app/manifests/v1", "Accept", "application/vnd.oci.image.manifest.v1+json")
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != tr.want["registry.local:5000"] {
		t.Errorf("prefix with a port: %d %s, want %s", resp.StatusCode, got, tr.want["registry.local:5000"])
	}
	// Each upstream was asked for its own names only, and the library/
	// rule applied to the default alone.
	if n := tr.ghcr.Count("GET", "/library/"); n != 0 {
		t.Errorf("ghcr.io was asked for library/ %d times", n)
	}
	// The catalog names every upstream's repositories as clients do.
	var cat struct{ Repositories []string }
	resp = get(t, tr.mirror.URL+"/v2/_catalog")
	json.NewDecoder(resp.Body).Decode(&cat)
	want := []string{"ghcr.io/team/app", "registry.local:5000/team/app", "team/app"}
	if len(cat.Repositories) != 3 || cat.Repositories[0] != want[0] || cat.Repositories[1] != want[1] || cat.Repositories[2] != want[2] {
		t.Errorf("catalog %q, want %q", cat.Repositories, want)
	}
}

// TestUnknownNamespaceIsRefused: an ns no upstream is configured for gets
// 404 NAME_UNKNOWN on every route (so containerd tries its next host and
// reports that host's answer), and no registry hears of it.
func TestUnknownNamespaceIsRefused(t *testing.T) {
	tr := startThree(t)
	d := tr.want["ghcr.io"]
	before := tr.outbound()
	for _, path := range []string{
		"/v2/team/app/manifests/v1?ns=quay.io",
		"/v2/team/app/manifests/" + d + "?ns=evil.example:443",
		"/v2/team/app/blobs/" + d + "?ns=quay.io",
		"/v2/team/app/tags/list?ns=quay.io",
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp := do(t, method, tr.mirror.URL+path)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d %s, want 404", method, path, resp.StatusCode, body)
			}
			if method == http.MethodGet && !strings.Contains(string(body), `"code":"NAME_UNKNOWN"`) {
				t.Errorf("%s %s: body %s, want NAME_UNKNOWN", method, path, body)
			}
		}
	}
	if n := tr.outbound() - before; n != 0 {
		t.Errorf("%d requests reached an upstream for unknown namespaces", n)
	}
}

// withQuery is a transport that adds name=value to every request, as
// containerd adds ns= when it talks to a mirror.
func withQuery(t *testing.T, name, value string) http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		q := r.URL.Query()
		q.Set(name, value)
		r.URL.RawQuery = q.Encode()
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
