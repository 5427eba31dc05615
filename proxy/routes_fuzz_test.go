package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
)

// fuzzMethods are the methods a fuzzed request uses (the server refuses
// others before any handler runs).
var fuzzMethods = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// FuzzRouter drives the real handler, every route of the write path
// included, with fuzzed paths, queries and methods. Whatever the request:
//   - no panic and no 500 (the store here never fails, so a 500 is wharf's);
//   - every error status has a v2 JSON error body (HEAD: no body);
//   - a request that reaches the store names, literally, the repository the
//     store is asked for: no "..", "//" or "." in a path reaches another
//     repository, and the repository reached is a clean path.
func FuzzRouter(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	id := "6f1c9d1e-2b7a-4c55-9a7e-2f3d4c5b6a79"
	seeds := []struct {
		m           uint8
		path, query string
	}{
		{0, "/v2/", ""},
		{0, "/v2/alpine/manifests/3.20", ""},
		{1, "/v2/library/alpine/manifests/" + d, ""},
		{0, "/v2/alpine/manifests/3.20", "ns=ghcr.io"},
		{0, "/v2/alpine/manifests/3.20", "ns=evil.example"},
		{0, "/v2/ghcr.io/acme/app/blobs/" + d, ""},
		{0, "/v2/registry.local:5000/x/tags/list", "n=10&last=a"},
		{0, "/v2/a/../b/manifests/v1", ""},
		{0, "/v2/a//b/manifests/v1", ""},
		{0, "/v2/a/./b/manifests/v1", ""},
		{0, "/v2/a%2F..%2Fb/manifests/v1", ""},
		{0, "/v2/foo/manifests/bar/manifests/v1", ""},
		{0, "/v2/blobs/blobs/" + d, ""},
		{0, "/v2/_catalog", "n=1"},
		{3, "/v2/a/blobs/uploads/", "mount=" + d + "&from=../b"},
		{3, "/v2/a/blobs/uploads/", "digest=" + d},
		{4, "/v2/a/blobs/uploads/" + id, ""},
		{2, "/v2/a/blobs/uploads/" + id, "digest=" + d},
		{5, "/v2/a/blobs/uploads/" + id, ""},
		{2, "/v2/a/manifests/v1", ""},
		{5, "/v2/a/manifests/" + d, ""},
		{5, "/v2/a/blobs/" + d, ""},
		{0, "/v2/a/referrers/" + d, "artifactType=x"},
		{6, "/v2/", ""},
		{0, "/v2/" + strings.Repeat("a", 256) + "/manifests/v1", ""},
		{0, "/healthz", ""},
		{0, "/metrics", ""},
		{0, "/", ""},
	}
	for _, s := range seeds {
		f.Add(s.m, s.path, s.query)
	}
	ups, err := NewUpstreamSet(hub{}, plain("ghcr.io"), plain("registry.local:5000"))
	if err != nil {
		f.Fatal(err)
	}
	rec := &pushRecorder{}
	h, err := New(Options{Store: rec, Upstreams: ups})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m uint8, p, query string) {
		target := p
		if query != "" {
			target += "?" + query
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(p, "/") {
			return // net/http refuses it before any handler
		}
		*rec = pushRecorder{}
		req := httptest.NewRequest(fuzzMethods[int(m)%len(fuzzMethods)], "/", strings.NewReader("{}"))
		req.URL, req.RequestURI = u, target
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", req.Method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && req.Method != http.MethodHead {
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) == 0 || body.Errors[0].Code == "" {
				t.Fatalf("%s %s: %d without a v2 error body: %q", req.Method, target, w.Code, w.Body)
			}
		}
		if rec.repo != "" {
			checkNamed(t, u.Path, rec.repo)
		}
	})
}

// checkNamed fails unless repo, the repository path the store was asked
// for, is clean and is what the request path spells after /v2/ (behind an
// optional registry prefix, and with Docker Hub's library/ implied).
func checkNamed(t *testing.T, reqPath, repo string) {
	t.Helper()
	if path.Clean(repo) != repo || strings.HasPrefix(repo, "/") || strings.Contains(repo, "..") {
		t.Fatalf("%s reached repository %q, not a clean path", reqPath, repo)
	}
	name := strings.TrimPrefix(reqPath, "/v2/")
	spellings := []string{repo + "/", strings.TrimPrefix(repo, "library/") + "/"}
	for _, s := range spellings {
		if strings.HasPrefix(name, s) {
			return
		}
		if _, rest, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(rest, s) {
			return // a registry prefix: /v2/ghcr.io/<repo>/…
		}
	}
	t.Fatalf("%s reached repository %q, which it does not name", reqPath, repo)
}
