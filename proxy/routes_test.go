package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// recorder is a Store that records what the router asked it for. Routing is
// what these tests check; the store's behaviour is tested with real parts in
// e2e/.
type recorder struct {
	kind, repo, ref string
}

func (r *recorder) Manifest(_ context.Context, repo cache.Repo, ref string, _ []string) (*cache.Manifest, error) {
	r.kind, r.repo, r.ref = "manifest", repo.Path, ref
	return nil, cache.ErrNotFound
}

func (r *recorder) Blob(_ context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error) {
	r.kind, r.repo, r.ref = "blob", repo.Path, d.String()
	return nil, cache.ErrNotFound
}

func (r *recorder) StatBlob(_ context.Context, repo cache.Repo, d digest.Digest) (int64, error) {
	r.kind, r.repo, r.ref = "blob", repo.Path, d.String()
	return 0, cache.ErrNotFound
}

func (r *recorder) Tags(_ context.Context, repo cache.Repo, _ int, _ string) ([]string, bool, error) {
	r.kind, r.repo = "tags", repo.Path
	return []string{}, false, nil
}

func (r *recorder) Catalog(context.Context) ([]cache.Repo, error) {
	r.kind = "catalog"
	return nil, nil
}

type hub struct{}

func (hub) Name() string { return "docker.io" }
func (hub) Repository(p string) string {
	if !strings.Contains(p, "/") {
		return "library/" + p
	}
	return p
}

func TestRoutes(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	long255 := strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127)
	long256 := strings.Repeat("a", 128) + "/" + strings.Repeat("b", 127)
	cases := []struct {
		method, path    string
		kind, repo, ref string // what the store is asked; kind "" = never reached
		status          int
		code            string
	}{
		{"GET", "/v2/", "", "", "", 200, ""},
		{"HEAD", "/v2/", "", "", "", 200, ""},
		{"GET", "/v2/alpine/manifests/3.20", "manifest", "library/alpine", "3.20", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/library/alpine/manifests/latest", "manifest", "library/alpine", "latest", 404, "MANIFEST_UNKNOWN"},
		{"HEAD", "/v2/a/b/c/d/manifests/" + d, "manifest", "a/b/c/d", d, 404, ""},
		{"GET", "/v2/foo/manifests/bar/manifests/v1", "manifest", "foo/manifests/bar", "v1", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/blobs/blobs/" + d, "blob", "library/blobs", d, 404, "BLOB_UNKNOWN"},
		{"GET", "/v2/tags/manifests/list", "manifest", "library/tags", "list", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/team/my.registry-name_x/sub__dir/tags/list", "tags", "team/my.registry-name_x/sub__dir", "", 200, ""},
		// A first component that looks like a registry host is one (see Resolve).
		{"GET", "/v2/my.registry-name_x/sub__dir/tags/list", "", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/docker.io/my.registry-name_x/sub__dir/tags/list", "tags", "my.registry-name_x/sub__dir", "", 200, ""},
		{"GET", "/v2/" + long255 + "/manifests/v1", "manifest", long255, "v1", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/" + long256 + "/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/UPPER/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/localhost:5000/x/manifests/v1", "", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/x/localhost:5000/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/alpine/manifests/3.20?ns=docker.io", "manifest", "library/alpine", "3.20", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/docker.io/alpine/manifests/3.20", "manifest", "library/alpine", "3.20", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/alpine/manifests/3.20?ns=evil.example", "", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/alpine/blobs/" + d + "?ns=evil.example", "", "", "", 404, "NAME_UNKNOWN"},
		{"GET", "/v2/a/../b/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/a//b/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/-a/manifests/v1", "", "", "", 400, "NAME_INVALID"},
		{"GET", "/v2/a/manifests/.bad", "", "", "", 400, "TAG_INVALID"},
		{"GET", "/v2/a/manifests/" + strings.Repeat("t", 129), "", "", "", 400, "TAG_INVALID"},
		{"GET", "/v2/a/blobs/sha256:short", "", "", "", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/notadigest", "", "", "", 400, "DIGEST_INVALID"},
		{"GET", "/v2/_catalog", "catalog", "", "", 200, ""},
		{"DELETE", "/v2/a/manifests/v1", "", "", "", 405, "UNSUPPORTED"},
		{"POST", "/v2/a/blobs/uploads/", "", "", "", 404, "NOT_FOUND"},
		{"GET", "/healthz", "", "", "", 200, ""},
		{"GET", "/", "", "", "", 404, "NOT_FOUND"}, // the status page only with Options.StatusPage (status_test.go)
		{"GET", "/nope", "", "", "", 404, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			rec := &recorder{}
			h, err := New(Options{Store: rec, Upstream: hub{}})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
			if w.Code != c.status {
				t.Errorf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if rec.kind != c.kind || rec.repo != c.repo || rec.ref != c.ref {
				t.Errorf("store asked for %s %q %q, want %s %q %q", rec.kind, rec.repo, rec.ref, c.kind, c.repo, c.ref)
			}
			if c.code != "" {
				var body errorBody
				json.Unmarshal(w.Body.Bytes(), &body)
				if len(body.Errors) == 0 || body.Errors[0].Code != c.code {
					t.Errorf("body %s, want code %s", w.Body, c.code)
				}
			}
			if strings.HasPrefix(c.path, "/v2/") && w.Header().Get("Docker-Distribution-Api-Version") != "registry/2.0" {
				t.Errorf("no Docker-Distribution-Api-Version header")
			}
			if w.Header().Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id")
			}
			_ = http.MethodGet
		})
	}
}

// TestLongNamesAreNotEchoedWhole: a name, an ?ns= or a tag is bounded only
// by the request line; refused, it is named in the error cut short, so the
// body (and the log line, and the status page's hook) stays small.
func TestLongNamesAreNotEchoedWhole(t *testing.T) {
	long := strings.Repeat("a/", 32<<10) + "a"
	cases := []struct {
		path, code string
		status     int
	}{
		{"/v2/" + long + "/manifests/v1", "NAME_INVALID", 400},
		{"/v2/alpine/manifests/v1?ns=" + strings.Repeat("x", 64<<10), "NAME_UNKNOWN", 404},
		{"/v2/alpine/manifests/." + strings.Repeat("t", 64<<10), "TAG_INVALID", 400},
		{"/v2/alpine/blobs/sha256:" + strings.Repeat("0", 64<<10), "DIGEST_INVALID", 400},
	}
	for _, c := range cases {
		rec := &recorder{}
		h, err := New(Options{Store: rec, Upstream: hub{}})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
		if w.Code != c.status || !strings.Contains(w.Body.String(), `"`+c.code+`"`) || rec.kind != "" {
			t.Errorf("%.40s…: %d, store asked %q, want %d %s: %.300s", c.path, w.Code, rec.kind, c.status, c.code, w.Body)
		}
		if w.Body.Len() > 1024 {
			t.Errorf("%.40s…: a body of %d bytes for a %d-byte path, want at most 1 KiB", c.path, w.Body.Len(), len(c.path))
		}
	}
}
