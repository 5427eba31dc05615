package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/transport"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The hostile upstream tests: an upstream (hostile, or intercepted) tries
// to aim wharf at the site's own network, or sends what is not a manifest.
// The upstream runs on 127.0.0.1 like everything else here, and the mirror
// is told to treat it as public (transport.NetworkPublic), as it would
// treat registry-1.docker.io: no traffic leaves the machine.

// acceptManifests is the Accept header docker and containerd send.
const acceptManifests = "application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

// hostile is an upstream whose answer a test sets, counting the requests
// it gets by kind.
type hostile struct {
	*httptest.Server
	mu        sync.Mutex
	answer    http.HandlerFunc
	manifests atomic.Int32
	blobs     atomic.Int32
}

func newHostile(t *testing.T, answer http.HandlerFunc) *hostile {
	t.Helper()
	h := &hostile{answer: answer}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			h.manifests.Add(1)
		case strings.Contains(r.URL.Path, "/blobs/"):
			h.blobs.Add(1)
		}
		h.mu.Lock()
		answer := h.answer
		h.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostile) set(answer http.HandlerFunc) {
	h.mu.Lock()
	h.answer = answer
	h.mu.Unlock()
}

// internal is a service on the site's network: it records whether it was
// reached and answers text/plain.
type internal struct {
	*httptest.Server
	hits atomic.Int32
}

const internalBody = "internal service: do not leak"

func newInternal(t *testing.T) *internal {
	t.Helper()
	in := &internal{}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		in.hits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, internalBody)
	}))
	t.Cleanup(in.Close)
	return in
}

// v2Failure reads a v2 error response's status, first code and message.
func v2Failure(t *testing.T, resp *http.Response) (int, string, string, []byte) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var e v2Error
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return resp.StatusCode, "", "", body
	}
	return resp.StatusCode, e.Errors[0].Code, e.Errors[0].Message, body
}

// assertStoresNothing checks that the mirror keeps nothing: no file under
// blobs/, no indexed content, no tag record, no repository.
func assertStoresNothing(t *testing.T, m *mirror, repo, tag string) {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(m.Dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("the data dir holds %v", files)
	}
	if bytes, items := m.Cache.Usage(); bytes != 0 || items != 0 {
		t.Errorf("the store holds %d items of %d bytes", items, bytes)
	}
	r := cache.Repo{Upstream: m.up.Name(), Path: repo}
	if tagged, err := m.Cache.Resolve(r, tag); err == nil {
		t.Errorf("%s:%s resolves to %v", repo, tag, tagged)
	}
	if repos, err := m.Cache.Repositories(); err != nil || len(repos) != 0 {
		t.Errorf("repositories %v, %v; want none", repos, err)
	}
}

// TestHostileUpstreamRedirectToInternalService: an upstream treated as
// public answers a manifest GET or a blob GET with a 307 to a service on
// 127.0.0.1. The client gets 502 UNAVAILABLE saying why, the internal
// service is never contacted (so no byte of it reaches the client),
// nothing is cached, and the next request asks the upstream again.
func TestHostileUpstreamRedirectToInternalService(t *testing.T) {
	blob := digest.FromString(internalBody) // what the internal service's answer would hash to
	for _, tt := range []struct {
		name, path string
		count      func(*hostile) int32
	}{
		{"manifest", "/v2/team/app/manifests/v1", func(h *hostile) int32 { return h.manifests.Load() }},
		{"blob", "/v2/team/app/blobs/" + blob.String(), func(h *hostile) int32 { return h.blobs.Load() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := newInternal(t)
			up := newHostile(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, in.URL+"/internal", http.StatusTemporaryRedirect)
			})
			m := startMirror(t, up.URL, mirrorOpts{network: transport.NetworkPublic})
			for i := int32(1); i <= 2; i++ {
				status, code, msg, body := v2Failure(t, get(t, m.URL+tt.path, "Accept", acceptManifests))
				if status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, "site's own network") {
					t.Errorf("request %d: %d %s %q, want 502 UNAVAILABLE naming the refusal", i, status, code, msg)
				}
				if bytes.Contains(body, []byte(internalBody)) {
					t.Errorf("request %d: the internal service's answer reached the client", i)
				}
				if n := tt.count(up); n < i {
					t.Errorf("request %d: the upstream was asked %d times: an answer was cached", i, n)
				}
			}
			if n := in.hits.Load(); n != 0 {
				t.Errorf("the internal service was contacted %d times", n)
			}
			assertStoresNothing(t, m, "team/app", "v1")
			if _, ok := m.Cache.HasContent(blob); ok {
				t.Errorf("the internal service's answer is stored")
			}
		})
	}
}

// TestHostileUpstreamTokenRealmInternal: a public upstream's Bearer
// challenge names a token realm on 127.0.0.1. wharf does not ask it for a
// token (it would send the upstream's credentials there): 502.
func TestHostileUpstreamTokenRealmInternal(t *testing.T) {
	in := newInternal(t)
	up := newHostile(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="registry"`, in.URL))
		w.WriteHeader(http.StatusUnauthorized)
	})
	m := startMirror(t, up.URL, mirrorOpts{network: transport.NetworkPublic})
	status, code, msg, _ := v2Failure(t, get(t, m.URL+"/v2/team/app/manifests/v1", "Accept", acceptManifests))
	if status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, "token server") {
		t.Errorf("%d %s %q, want 502 UNAVAILABLE naming the refusal", status, code, msg)
	}
	if n := in.hits.Load(); n != 0 {
		t.Errorf("the token realm on 127.0.0.1 was contacted %d times", n)
	}
	assertStoresNothing(t, m, "team/app", "v1")
}

// TestUpstreamOnLoopbackMayRedirectToItsCDN: an upstream that is itself on
// 127.0.0.1 (the default classification) sends every blob to its CDN, also
// on 127.0.0.1: the operator's own network is the upstream's, and a pull
// through wharf works.
func TestUpstreamOnLoopbackMayRedirectToItsCDN(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Redirect: strings.Contains(r.URL.Path, "/blobs/")}
	})
	want := upstreamtest.Push(t, reg, "team/cdn:v1", upstreamtest.RandomImage(t, 2, 32<<10, upstreamtest.OCIManifest))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	img, err := remote.Image(m.ref(t, "team/cdn:v1"), client(t)...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pulled image invalid: %v", err)
	}
	if d, _ := img.Digest(); d.String() != want.Digest.String() {
		t.Errorf("digest %s, want %s", d, want.Digest)
	}
	cdn := 0
	for _, r := range faulty.Requests() {
		if r.CDN {
			cdn++
		}
	}
	if cdn < 3 { // config and two layers
		t.Errorf("%d blob requests reached the CDN, want 3", cdn)
	}
}

// TestUpstreamManifestMustBeManifest: a 200 to a manifest GET whose body
// is not a manifest (text, HTML, JSON of another kind, a Content-Type the
// body contradicts, Docker schema 1, over the size limit) is a 502 saying
// so, is never cached, and a later correct answer is served and cached.
func TestUpstreamManifestMustBeManifest(t *testing.T) {
	img := upstreamtest.RandomImage(t, 1, 256, upstreamtest.OCIManifest)
	good, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	goodDigest := digest.FromBytes(good)
	huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"pad":"`),
		bytes.Repeat([]byte("a"), 4<<20)...)
	huge = append(huge, `"}}`...)
	schema1 := `{"schemaVersion":1,"name":"team/app","tag":"v1","architecture":"amd64","fsLayers":[{"blobSum":"` +
		digest.FromString("l").String() + `"}],"history":[{"v1Compatibility":"{}"}]}`

	for _, tt := range []struct {
		name, contentType string
		body              []byte
	}{
		{"text/plain", "text/plain; charset=utf-8", []byte(internalBody)},
		{"html", "text/html", []byte("<!doctype html><html><body>Login required</body></html>")},
		{"json that is not a manifest", "application/vnd.oci.image.manifest.v1+json", []byte(`{"status":"ok","items":[1,2,3]}`)},
		{"media type that the body contradicts", "application/vnd.docker.distribution.manifest.v2+json", good},
		{"index type for an image", "application/vnd.oci.image.index.v1+json", good},
		{"docker schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(schema1)},
		{"over the size limit", "application/vnd.oci.image.manifest.v1+json", huge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			serve := func(ct string, body []byte) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if !strings.Contains(r.URL.Path, "/manifests/") {
						http.NotFound(w, r)
						return
					}
					w.Header().Set("Content-Type", ct)
					w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
					w.Write(body)
				}
			}
			up := newHostile(t, serve(tt.contentType, tt.body))
			m := startMirror(t, up.URL, mirrorOpts{network: transport.NetworkPublic})
			path := "/v2/team/app/manifests/v1"
			for i := int32(1); i <= 2; i++ {
				status, code, msg, body := v2Failure(t, get(t, m.URL+path, "Accept", acceptManifests))
				if status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, "not a manifest") {
					t.Errorf("request %d: %d %s %q, want 502 UNAVAILABLE saying it is not a manifest", i, status, code, msg)
				}
				if bytes.Equal(body, tt.body) {
					t.Errorf("request %d: the upstream's body was served", i)
				}
				if n := up.manifests.Load(); n != i {
					t.Errorf("request %d: the upstream was asked %d times: an answer was cached", i, n)
				}
			}
			// By digest too: the bytes hash right, they are still no manifest.
			resp := get(t, m.URL+"/v2/team/app/manifests/"+digest.FromBytes(tt.body).String(), "Accept", acceptManifests)
			if status, _, _, _ := v2Failure(t, resp); status != http.StatusBadGateway {
				t.Errorf("by digest: %d, want 502", status)
			}
			assertStoresNothing(t, m, "team/app", "v1")
			reason := "not_manifest"
			if len(tt.body) > 4<<20 {
				reason = "too_large"
			}
			if n := testutil.ToFloat64(m.Metrics.UpstreamFailures.WithLabelValues(m.up.Name(), reason)); n != 3 {
				t.Errorf("wharf_upstream_failures_total{reason=%q} = %v, want 3", reason, n)
			}

			// The upstream mends its ways: the right answer is served and
			// cached (a third request does not reach the upstream).
			up.set(serve("application/vnd.oci.image.manifest.v1+json", good))
			for i := 0; i < 2; i++ {
				resp := get(t, m.URL+path, "Accept", acceptManifests)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) ||
					resp.Header.Get("Docker-Content-Digest") != goodDigest.String() {
					t.Fatalf("after the fix, request %d: %s %q", i, resp.Status, body)
				}
			}
			if n := up.manifests.Load(); n != 4 {
				t.Errorf("the upstream was asked %d times, want 4 (2 refused, 1 by digest, 1 stored)", n)
			}
			if _, ok := m.Cache.HasContent(goodDigest); !ok {
				t.Errorf("the correct manifest was not stored")
			}
		})
	}
}

// TestRevalidatedTagMustBeManifest: a tag cached from a good answer is
// revalidated after its TTL; the upstream's HEAD names a new digest and its
// GET sends text/plain. The client gets 502, only a GET's body could have
// been stored and this one is not, and the tag still resolves to the good
// manifest once the upstream serves it again.
func TestRevalidatedTagMustBeManifest(t *testing.T) {
	img := upstreamtest.RandomImage(t, 1, 256, upstreamtest.OCIManifest)
	good, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(internalBody)
	answer := func(ct string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	}
	const oci = "application/vnd.oci.image.manifest.v1+json"
	up := newHostile(t, answer(oci, good))
	clk := &clock{now: time.Now()}
	m := startMirror(t, up.URL, mirrorOpts{network: transport.NetworkPublic, clock: clk, tagTTL: time.Minute})
	path := "/v2/team/app/manifests/v1"
	if resp := get(t, m.URL+path, "Accept", acceptManifests); resp.StatusCode != http.StatusOK {
		t.Fatalf("first pull: %s", resp.Status)
	}
	clk.Advance(2 * time.Minute)
	up.set(answer("text/plain", junk))
	status, code, msg, body := v2Failure(t, get(t, m.URL+path, "Accept", acceptManifests))
	if status != http.StatusBadGateway || code != "UNAVAILABLE" || !strings.Contains(msg, "not a manifest") {
		t.Errorf("revalidation to junk: %d %s %q, want 502 UNAVAILABLE saying it is not a manifest", status, code, msg)
	}
	if bytes.Equal(body, junk) {
		t.Error("the junk was served")
	}
	if _, ok := m.Cache.HasContent(digest.FromBytes(junk)); ok {
		t.Error("the junk was stored")
	}
	if tagged, err := m.Cache.Resolve(cache.Repo{Upstream: m.up.Name(), Path: "team/app"}, "v1"); err != nil ||
		tagged.Descriptor.Digest != digest.FromBytes(good) {
		t.Errorf("the tag resolves to %v, %v; want the good manifest", tagged.Descriptor.Digest, err)
	}
	up.set(answer(oci, good))
	resp := get(t, m.URL+path, "Accept", acceptManifests)
	if got, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || !bytes.Equal(got, good) {
		t.Errorf("after the upstream mends: %s %q", resp.Status, got)
	}
}
