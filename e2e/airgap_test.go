package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// startOffline runs wharf on dir with the offline switch, its default
// upstream named by upstreamURL (which it must never contact).
func startOffline(t *testing.T, upstreamURL, dir string) *mirror {
	t.Helper()
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	log.SetOutput(os.Stderr)
	up, err := upstream.New(upstream.Options{URL: upstreamURL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// A TTL of a nanosecond: online, every tag would be revalidated.
	c, err := cache.Open(cache.Options{Dir: dir, Origins: []cache.Origin{up}, TagTTL: time.Nanosecond, Offline: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{Store: c, Upstream: up, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	m := &mirror{URL: srv.URL, Host: srv.Listener.Addr().String(), Dir: dir, Cache: c, srv: srv, up: up}
	t.Cleanup(m.stop)
	return m
}

// TestOfflineServesTheStoreAndNeverAsksUpstream warms a store through an
// online wharf, then serves it offline in front of the same (counting)
// upstream: tags pull although their TTL is long past, a tag cached for
// one client's Accept set answers another's, tags list from the store,
// misses are 404s that say wharf is offline, and the upstream sees not
// one request.
func TestOfflineServesTheStoreAndNeverAsksUpstream(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	idx := upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)
	want := upstreamtest.PushIndex(t, reg, "team/app:v1", idx).Digest
	dir := t.TempDir()

	online := startMirror(t, faulty.URL, mirrorOpts{dir: dir})
	pulled, err := remote.Index(online.ref(t, "team/app:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(pulled); err != nil { // reads every child and blob: all cached
		t.Fatal(err)
	}
	online.stop()

	faulty.ResetCounts()
	m := startOffline(t, faulty.URL, dir)
	got, err := remote.Index(m.ref(t, "team/app:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d.String() != want.String() {
		t.Errorf("offline pull: %s, want %s", d, want)
	}
	if err := validate.Index(got); err != nil {
		t.Error(err)
	}

	// Another client's Accept set: online this would ask the upstream.
	resp := get(t, m.URL+"/v2/team/app/manifests/v1", "Accept", string(upstreamtest.OCIIndex)+", "+string(upstreamtest.DockerManifestList))
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != want.String() {
		t.Errorf("other Accept set: %d %s, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want)
	}
	resp = get(t, m.URL+"/v2/team/app/tags/list")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.Contains(string(b), `"v1"`) {
		t.Errorf("tags list offline: %d %s", resp.StatusCode, b)
	}

	offlineMiss(t, get(t, m.URL+"/v2/team/app/manifests/v2"), "MANIFEST_UNKNOWN")
	offlineMiss(t, get(t, m.URL+"/v2/team/other/manifests/"+digest.FromString("x").String()), "MANIFEST_UNKNOWN")
	offlineMiss(t, get(t, m.URL+"/v2/team/app/blobs/"+digest.FromString("x").String()), "BLOB_UNKNOWN")
	if r := do(t, http.MethodHead, m.URL+"/v2/team/app/blobs/"+digest.FromString("x").String()); r.StatusCode != 404 {
		t.Errorf("HEAD of a missing blob offline: %d, want 404", r.StatusCode)
	}
	if reqs := faulty.Requests(); len(reqs) != 0 {
		t.Errorf("the upstream saw %d requests from an offline wharf: %+v", len(reqs), reqs)
	}
}

func offlineMiss(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 404 || len(body.Errors) != 1 || body.Errors[0].Code != code || !strings.Contains(body.Errors[0].Message, "offline") {
		t.Errorf("%s %s: %d %+v, want 404 %s saying offline", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body.Errors, code)
	}
}
