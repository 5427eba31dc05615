package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/cache"
)

// access is what a principal may do to a repository, in the matrix's
// own words (an oracle written apart from authrules.go).
type access int

const (
	noAccess access = iota
	readAccess
	writeAccess
)

// TestAccessMatrix walks every route of the table × every method × every
// principal (anonymous, a reader, a writer of another prefix, the writer
// of the repository) × two repositories, under the three ways a site runs
// wharf, and checks each request either reaches the store or is refused
// with the right status before it does.
func TestAccessMatrix(t *testing.T) {
	users := passwords{}
	for _, u := range []string{"reader", "other", "writer"} {
		users[u] = hashOf(t, u+"-pw", bcrypt.MinCost)
	}
	siteRules := []Rule{
		{User: "reader", Prefix: ""},
		{User: "other", Prefix: "docker.io/other", Write: true},
		{User: "writer", Prefix: "docker.io/team", Write: true},
		{User: Anonymous, Prefix: "docker.io/library"},
	}
	principals := []string{"", "reader", "other", "writer"}
	targets := []string{"team/app", "alpine"} // docker.io/team/app, docker.io/library/alpine
	// The same repository by ?ns=, and names of no upstream: a registry
	// host in front, or an ?ns= nobody is configured for. Those are refused
	// 404 NAME_UNKNOWN, whoever asks, before the store is.
	targets = append(targets, "team/app?ns=docker.io", "registry.invalid/acme/app", "team/app?ns=registry.invalid")
	unknown := func(target string) bool { return strings.Contains(target, "registry.invalid") }
	sameAs := func(target string) string { return strings.TrimSuffix(target, "?ns=docker.io") }
	configs := []struct {
		name  string
		auth  *AuthOptions
		users bool // credentials count (else they are ignored: everyone is anonymous)
		grant func(principal, target string) access
	}{
		{"default: a read-only mirror", nil, false,
			func(string, string) access { return readAccess }},
		{"lab: anonymous pushes", &AuthOptions{AnonymousPush: true}, false,
			func(string, string) access { return writeAccess }},
		{"site: users, rules, anonymous pulls of library/", &AuthOptions{Passwords: users, AnonymousPull: true, Rules: siteRules}, true,
			func(p, target string) access {
				switch {
				case p == "reader":
					return readAccess
				case p == "writer" && target == "team/app":
					return writeAccess
				case p == "" && target == "alpine":
					return readAccess
				}
				return noAccess
			}},
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			rec := &pushRecorder{}
			pf := &prefetchRecorder{}
			opts := withStatusPage(t, Options{Store: servingRecorder{rec, t.TempDir()}, Upstreams: threeUpstreams(t), Auth: cfg.auth, Prefetch: pf,
				MetricsHandler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})},
				prometheus.NewRegistry(), nil, nil, nil)
			h, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			rows, told := 0, 0
			for _, rt := range routeTemplates(t, opts) {
				for _, target := range targets {
					name, query, _ := strings.Cut(target, "?")
					path := rt.path(t, name)
					for _, method := range methods {
						for _, p := range principals {
							rows++
							rec.kind, pf.calls = "", nil
							req := httptest.NewRequest(method, path, nil)
							req.URL.RawQuery = query
							// What a valid request carries, so that a request let
							// through reaches the store rather than a 400.
							req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
							if rt.name == routeUpload {
								req.URL.RawQuery = strings.TrimPrefix(query+"&digest=sha256:"+strings.Repeat("b", 64), "&")
							}
							if p != "" {
								req.SetBasicAuth(p, p+"-pw")
							}
							w := httptest.NewRecorder()
							h.ServeHTTP(w, req)
							who := p
							if !cfg.users {
								who = ""
							}
							want := rt.expect(method, cfg.grant(p, sameAs(target)), who, cfg.users)
							if unknown(target) && rt.names() && slices.Contains(rt.methods, method) {
								want = outcome{status: 404, code: "NAME_UNKNOWN"}
							}
							label := method + " " + req.URL.RequestURI() + " as " + orAnonymous(p)
							if msg := want.check(w, method, rec.kind); msg != "" {
								t.Errorf("%s: %s", label, msg)
							}
							if !want.reach && len(pf.calls) > 0 {
								t.Errorf("%s: refused, yet prefetch was told %v", label, pf.calls)
							}
							told += len(pf.calls)
						}
					}
				}
			}
			t.Logf("%d rows", rows)
			if told == 0 {
				t.Error("prefetch was told nothing by any request: the check above proves nothing")
			}
		})
	}
}

// servingRecorder answers manifest and blob reads as a cache that fetched
// them would, so that a request let through goes on to tell prefetch.
type servingRecorder struct {
	*pushRecorder
	dir string
}

func (s servingRecorder) Manifest(ctx context.Context, repo cache.Repo, ref string, accept []string) (*cache.Manifest, error) {
	s.pushRecorder.Manifest(ctx, repo, ref, accept) // noted
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	return &cache.Manifest{Body: body, Fetched: true, Descriptor: ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(body), Size: int64(len(body))}}, nil
}

func (s servingRecorder) Blob(ctx context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error) {
	s.pushRecorder.Blob(ctx, repo, d) // noted
	f, err := os.CreateTemp(s.dir, "blob")
	if err != nil {
		return nil, err
	}
	return &cache.Blob{Digest: d, File: f}, nil
}

// prefetchRecorder is a Prefetcher that notes what it is told: a refused
// request must tell it nothing (no blob fetched, none counted used, on a
// request its sender may not make).
type prefetchRecorder struct{ calls []string }

func (p *prefetchRecorder) Image(repo cache.Repo, m *cache.Manifest) {
	p.calls = append(p.calls, "Image "+repo.String())
}
func (p *prefetchRecorder) Arm(repo cache.Repo, m *cache.Manifest) {
	p.calls = append(p.calls, "Arm "+repo.String())
}
func (p *prefetchRecorder) Used(d digest.Digest) { p.calls = append(p.calls, "Used "+d.String()) }

// routeTemplate is one path of the route table with every method routed
// to it.
type routeTemplate struct {
	name     string // route name (routes.go)
	template string
	route    *mux.Route
	methods  []string
}

// routeTemplates walks the real route table.
func routeTemplates(t *testing.T, opts Options) []*routeTemplate {
	t.Helper()
	s := &server{opts: opts, upstreams: opts.Upstreams}
	var out []*routeTemplate
	byTemplate := map[string]*routeTemplate{}
	err := s.routes().Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		ms, _ := r.GetMethods()
		rt := byTemplate[tpl]
		if rt == nil {
			rt = &routeTemplate{name: r.GetName(), template: tpl, route: r}
			byTemplate[tpl] = rt
			out = append(out, rt)
		}
		rt.methods = append(rt.methods, ms...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("only %d route templates: the walk missed routes", len(out))
	}
	return out
}

// names tells whether the route's path carries a repository name.
func (rt *routeTemplate) names() bool {
	vars, _ := rt.route.GetVarNames()
	return slices.Contains(vars, "name")
}

// path fills the template's variables.
func (rt *routeTemplate) path(t *testing.T, name string) string {
	t.Helper()
	names, _ := rt.route.GetVarNames()
	values := map[string]string{
		"name": name, "reference": "v1", "digest": "sha256:" + strings.Repeat("a", 64),
		"uuid": "6f1c9d1e-2b7a-4c55-9a7e-2f3d4c5b6a79",
	}
	var pairs []string
	for _, n := range names {
		v, ok := values[n]
		if !ok {
			t.Fatalf("route %s has a variable %q the matrix does not fill", rt.template, n)
		}
		pairs = append(pairs, n, v)
	}
	u, err := rt.route.URLPath(pairs...)
	if err != nil {
		t.Fatalf("route %s: %v", rt.template, err)
	}
	return u.Path
}

// outcome is what the matrix expects of one request.
type outcome struct {
	reach  bool // the store is asked; otherwise status is exact
	status int
	code   string // the v2 error code the body must carry, when set
}

// expect says what method on this route should meet, for a principal
// holding grant on the route's repository (who is "" when the wharf
// treats it as anonymous).
func (rt *routeTemplate) expect(method string, grant access, who string, users bool) outcome {
	if rt.name == routeBase && users && who == "" {
		return outcome{status: 401} // the ping docker login answers, whatever the method
	}
	if !slices.Contains(rt.methods, method) {
		// Every configuration here lets anonymous clients in to read
		// something, so the router answers.
		return outcome{status: 405}
	}
	var need access
	switch rt.name {
	case routeHealth, routeMetrics, routeStatus, routeCatalog:
		return outcome{status: 200, reach: rt.name == routeCatalog}
	case routeBase:
		return outcome{status: 200}
	case routeUpload:
		need = writeAccess
	default:
		need = readAccess
		if method != "GET" && method != "HEAD" {
			need = writeAccess
		}
	}
	switch {
	case grant >= need:
		return outcome{reach: true}
	case who == "":
		return outcome{status: 401}
	}
	return outcome{status: 403}
}

// check compares a response with the outcome; "" when it matches.
func (o outcome) check(w *httptest.ResponseRecorder, method, asked string) string {
	switch {
	case o.reach && asked == "":
		return "the store was not asked (" + w.Result().Status + ": " + w.Body.String() + ")"
	case o.reach && (w.Code == 401 || w.Code == 403):
		return "refused after reaching the store: " + w.Body.String()
	case !o.reach && asked != "" && o.status != 200:
		return "the store was asked (" + asked + ") although the request is refused"
	case !o.reach && w.Code != o.status:
		return "status " + w.Result().Status + ", want " + http.StatusText(o.status) + ": " + w.Body.String()
	}
	// HEAD answers carry no body to hold the code.
	hasCode := func(code string) bool { return method == "HEAD" || strings.Contains(w.Body.String(), `"`+code+`"`) }
	switch {
	case w.Code == 401 && (w.Header().Get("WWW-Authenticate") != challenge || !hasCode("UNAUTHORIZED")):
		return "401 without the Basic challenge or the UNAUTHORIZED code: " + w.Body.String()
	case w.Code == 403 && !hasCode("DENIED"):
		return "403 without the DENIED code: " + w.Body.String()
	case o.code != "" && !hasCode(o.code):
		return "without the " + o.code + " code: " + w.Body.String()
	}
	return ""
}
