package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

type v2Error struct {
	Errors []struct {
		Code    string
		Message string
	}
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e v2Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func TestErrorCodes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	upstreamtest.Push(t, reg, "app/ok:v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
	// Each fault is classified as one failure: the upstream is never
	// marked down here (health_test.go covers that, and its 503).
	m := startMirror(t, faulty.URL, mirrorOpts{retries: 1, timeout: 300 * time.Millisecond, downAfter: 1000})
	zero := "sha256:" + strings.Repeat("0", 64)

	cases := []struct {
		name, method, path string
		fault              upstreamtest.Fault
		status             int
		code               string
	}{
		{"unknown tag", "GET", "/v2/app/ok/manifests/nope", upstreamtest.Fault{}, 404, "MANIFEST_UNKNOWN"},
		{"unknown manifest digest", "GET", "/v2/app/ok/manifests/" + zero, upstreamtest.Fault{}, 404, "MANIFEST_UNKNOWN"},
		{"unknown blob", "GET", "/v2/app/ok/blobs/" + zero, upstreamtest.Fault{}, 404, "BLOB_UNKNOWN"},
		{"unknown blob HEAD", "HEAD", "/v2/app/ok/blobs/" + zero, upstreamtest.Fault{}, 404, ""},
		{"unknown repository tags", "GET", "/v2/app/missing/tags/list", upstreamtest.Fault{}, 404, "NAME_UNKNOWN"},
		{"short digest", "GET", "/v2/app/ok/blobs/sha256:abc", upstreamtest.Fault{}, 400, "DIGEST_INVALID"},
		{"unknown algorithm", "GET", "/v2/app/ok/blobs/md5:" + strings.Repeat("0", 32), upstreamtest.Fault{}, 400, "DIGEST_INVALID"},
		{"manifest bad digest", "GET", "/v2/app/ok/manifests/sha256:xyz", upstreamtest.Fault{}, 400, "DIGEST_INVALID"},
		{"upper-case name", "GET", "/v2/App/ok/manifests/v1", upstreamtest.Fault{}, 400, "NAME_INVALID"},
		{"name with ..", "GET", "/v2/app/../ok/manifests/v1", upstreamtest.Fault{}, 400, "NAME_INVALID"},
		{"name of 256 chars", "GET", "/v2/" + strings.Repeat("a", 256) + "/manifests/v1", upstreamtest.Fault{}, 400, "NAME_INVALID"},
		{"bad tag", "GET", "/v2/app/ok/manifests/-bad", upstreamtest.Fault{}, 400, "TAG_INVALID"},
		{"bad n", "GET", "/v2/app/ok/tags/list?n=-1", upstreamtest.Fault{}, 400, "PAGINATION_NUMBER_INVALID"},
		{"push not supported", "PUT", "/v2/app/ok/manifests/v1", upstreamtest.Fault{}, 405, "UNSUPPORTED"},
		{"upstream 401", "GET", "/v2/app/ok/manifests/v2", upstreamtest.Fault{Status: 401}, 401, "UNAUTHORIZED"},
		{"upstream 403", "GET", "/v2/app/ok/manifests/v2", upstreamtest.Fault{Status: 403}, 403, "DENIED"},
		{"upstream 429", "GET", "/v2/app/ok/manifests/v2", upstreamtest.Fault{Status: 429, RetryAfter: "120"}, 429, "TOOMANYREQUESTS"},
		{"upstream 503", "GET", "/v2/app/ok/manifests/v2", upstreamtest.Fault{Status: 503}, 502, "UNAVAILABLE"},
		{"upstream reset", "GET", "/v2/app/ok/blobs/" + zero, upstreamtest.Fault{Reset: true}, 502, "UNAVAILABLE"},
		{"upstream timeout", "GET", "/v2/app/ok/manifests/v2", upstreamtest.Fault{Delay: 2 * time.Second}, 504, "UNAVAILABLE"},
		{"not a v2 path", "GET", "/v3/whatever", upstreamtest.Fault{}, 404, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			faulty.SetFault(func(*http.Request) upstreamtest.Fault { return c.fault })
			defer faulty.SetFault(nil)
			resp := do(t, c.method, m.URL+c.path)
			if resp.StatusCode != c.status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			if c.code != "" {
				if got := errorCode(t, resp); got != c.code {
					t.Errorf("code %q, want %q", got, c.code)
				}
			}
			if c.status == 429 && resp.Header.Get("Retry-After") != "120" {
				t.Errorf("Retry-After %q, want the upstream's 120", resp.Header.Get("Retry-After"))
			}
			if ct := resp.Header.Get("Content-Type"); c.method != "HEAD" && ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestBaseHealthAndMetrics(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	upstreamtest.Push(t, reg, "app/m:v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
	faulty.SetFault(func(*http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Header: http.Header{
			"Ratelimit-Limit":     {"100;w=21600"},
			"Ratelimit-Remaining": {"76;w=21600"},
		}}
	})
	m := startMirror(t, faulty.URL, mirrorOpts{})

	resp := get(t, m.URL+"/v2/")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %d %q", resp.StatusCode, resp.Header.Get("Docker-Distribution-Api-Version"))
	}
	if resp := get(t, m.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	pullDigest(t, m, "app/m:v1")
	waitFills(t, m) // a fill ends (stored) just after its clients got the last byte: then the next pull hits
	pullDigest(t, m, "app/m:v1")
	body, _ := io.ReadAll(get(t, m.URL+"/metrics").Body)
	for _, want := range []string{
		`wharf_cache_hits_total{kind="blob"}`,
		`wharf_cache_misses_total{kind="blob"}`,
		`wharf_served_bytes_total{source="cache"}`,
		`wharf_served_bytes_total{source="upstream"}`,
		`wharf_upstream_requests_total{`,
		`wharf_upstream_request_duration_seconds_bucket{`,
		`wharf_http_requests_total{method="GET",route="manifest",status="200"}`,
		`wharf_upstream_ratelimit_limit{upstream="` + faulty.Host + `"} 100`,
		`wharf_upstream_ratelimit_remaining{upstream="` + faulty.Host + `"} 76`,
		`wharf_cache_size_bytes `,
		`wharf_cache_blobs `,
		`wharf_fills_in_flight 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestOneComponentNameIsLibrary(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	want := upstreamtest.Push(t, reg, "library/busybox:1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)).Digest.String()
	m := startMirror(t, faulty.URL, mirrorOpts{officialLibrary: true})
	if got := pullDigest(t, m, "busybox:1"); got != want {
		t.Fatalf("busybox:1 → %s, want library/busybox:1 = %s", got, want)
	}
	faulty.ResetCounts()
	if got := pullDigest(t, m, "library/busybox:1"); got != want {
		t.Fatalf("library/busybox:1 → %s", got)
	}
	if n := faulty.Count("", "/manifests/") + faulty.BlobGets(); n != 0 {
		t.Errorf("library/busybox after busybox made %d upstream requests; they must be one cache entry", n)
	}
}

func TestTagsListAndCatalogPaginate(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest)
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		upstreamtest.Push(t, reg, "app/list:"+tag, img)
	}
	upstreamtest.Push(t, reg, "app/other:v1", img)
	m := startMirror(t, reg.URL, mirrorOpts{})

	resp := get(t, m.URL+"/v2/app/list/tags/list?n=2")
	var tl struct {
		Name string
		Tags []string
	}
	json.NewDecoder(resp.Body).Decode(&tl)
	if tl.Name != "app/list" || strings.Join(tl.Tags, ",") != "a,b" {
		t.Fatalf("first page: %+v", tl)
	}
	link := resp.Header.Get("Link")
	if link != `</v2/app/list/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("Link %q", link)
	}
	next := strings.TrimPrefix(strings.SplitN(link, ">", 2)[0], "<")
	resp = get(t, m.URL+next)
	tl.Tags = nil
	json.NewDecoder(resp.Body).Decode(&tl)
	if strings.Join(tl.Tags, ",") != "c,d" {
		t.Fatalf("second page: %v", tl.Tags)
	}

	pullDigest(t, m, "app/list:a")
	pullDigest(t, m, "app/other:v1")
	resp = get(t, m.URL+"/v2/_catalog?n=1")
	var cat struct{ Repositories []string }
	json.NewDecoder(resp.Body).Decode(&cat)
	if strings.Join(cat.Repositories, ",") != "app/list" || !strings.Contains(resp.Header.Get("Link"), "last=app%2Flist") {
		t.Fatalf("catalog page 1: %v, Link %q", cat.Repositories, resp.Header.Get("Link"))
	}
	resp = get(t, m.URL+"/v2/_catalog?last=app/list")
	cat.Repositories = nil
	json.NewDecoder(resp.Body).Decode(&cat)
	if strings.Join(cat.Repositories, ",") != "app/other" || resp.Header.Get("Link") != "" {
		t.Fatalf("catalog page 2: %v, Link %q", cat.Repositories, resp.Header.Get("Link"))
	}
}

func TestManifestHeadersAndConditional(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	desc := upstreamtest.Push(t, reg, "app/h:v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	m := startMirror(t, reg.URL, mirrorOpts{})
	for _, method := range []string{"HEAD", "GET"} {
		resp := do(t, method, m.URL+"/v2/app/h/manifests/v1", "Accept", string(upstreamtest.OCIManifest))
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Docker-Content-Digest") != desc.Digest.String() ||
			h.Get("Content-Type") != string(upstreamtest.OCIManifest) || h.Get("Content-Length") != itoa(desc.Size) ||
			h.Get("ETag") != `"`+desc.Digest.String()+`"` {
			t.Fatalf("%s: %d %v", method, resp.StatusCode, h)
		}
	}
	resp := get(t, m.URL+"/v2/app/h/manifests/v1", "Accept", string(upstreamtest.OCIManifest), "If-None-Match", `"`+desc.Digest.String()+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
}
