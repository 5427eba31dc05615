package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// pullDigest pulls ref through the mirror with a real client, validates
// every blob and returns the manifest digest.
func pullDigest(t *testing.T, m *mirror, ref string) string {
	t.Helper()
	img, err := remote.Image(m.ref(t, ref), client(t)...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

func TestRetaggedImageSeenAfterTTL(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	clk := &clock{now: time.Now()}
	const ttl = 10 * time.Minute
	m := startMirror(t, faulty.URL, mirrorOpts{tagTTL: ttl, clock: clk})

	a := upstreamtest.Push(t, reg, "app/web:stable", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
	if got := pullDigest(t, m, "app/web:stable"); got != a.Digest.String() {
		t.Fatalf("first pull: %s, want %s", got, a.Digest)
	}
	b := upstreamtest.Push(t, reg, "app/web:stable", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))

	faulty.ResetCounts()
	clk.Advance(ttl - time.Second)
	if got := pullDigest(t, m, "app/web:stable"); got != a.Digest.String() {
		t.Fatalf("within the TTL the tag moved to %s; want the cached %s", got, a.Digest)
	}
	if n := faulty.Count("", "/manifests/"); n != 0 {
		t.Fatalf("within the TTL wharf asked the upstream about manifests %d times, want 0", n)
	}

	clk.Advance(2 * time.Second)
	if got := pullDigest(t, m, "app/web:stable"); got != b.Digest.String() {
		t.Fatalf("after the TTL the tag is still %s; want the retagged %s", got, b.Digest)
	}
	if h, g := faulty.Count("HEAD", "/manifests/stable"), faulty.Count("GET", "/manifests/stable"); h != 1 || g != 1 {
		t.Errorf("revalidating a changed tag: %d HEAD, %d GET by tag; want 1 HEAD then 1 GET", h, g)
	}

	// Unchanged after another TTL: a HEAD only, no GET (HEADs don't count
	// against Docker Hub's pull limit).
	faulty.ResetCounts()
	clk.Advance(ttl + time.Second)
	if got := pullDigest(t, m, "app/web:stable"); got != b.Digest.String() {
		t.Fatalf("got %s", got)
	}
	if h, g := faulty.Count("HEAD", "/manifests/"), faulty.Count("GET", "/manifests/"); h != 1 || g != 0 {
		t.Errorf("revalidating an unchanged tag: %d HEAD, %d GET; want 1 HEAD, 0 GET", h, g)
	}
}

func TestOfflineServesCache(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	clk := &clock{now: time.Now()}
	m := startMirror(t, faulty.URL, mirrorOpts{tagTTL: time.Minute, clock: clk, retries: 1})
	want := upstreamtest.Push(t, reg, "app/api:v2", upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest)).Digest.String()
	pullDigest(t, m, "app/api:v2")

	for _, fault := range []struct {
		name string
		f    upstreamtest.Fault
	}{
		{"503", upstreamtest.Fault{Status: http.StatusServiceUnavailable}},
		{"reset", upstreamtest.Fault{Reset: true}},
		{"429", upstreamtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"}},
	} {
		faulty.SetFault(func(*http.Request) upstreamtest.Fault { return fault.f })
		clk.Advance(2 * time.Minute) // the tag is stale: wharf must ask, fail, and serve the cache
		if got := pullDigest(t, m, "app/api:v2"); got != want {
			t.Fatalf("upstream %s: pulled %s, want cached %s", fault.name, got, want)
		}
		if got := pullDigest(t, m, "app/api@"+want); got != want {
			t.Fatalf("upstream %s: by digest %s", fault.name, got)
		}
	}
	if n := testutil.ToFloat64(m.Metrics.StaleServed.WithLabelValues("tag")); n < 3 {
		t.Errorf("wharf_stale_served_total{kind=tag} = %v, want >= 3", n)
	}
	// Listing tags falls back to the cache as well.
	resp := get(t, m.URL+"/v2/app/api/tags/list")
	var tl struct{ Tags []string }
	json.NewDecoder(resp.Body).Decode(&tl)
	if resp.StatusCode != 200 || len(tl.Tags) != 1 || tl.Tags[0] != "v2" {
		t.Errorf("tags/list offline: %d %v", resp.StatusCode, tl.Tags)
	}
}

func TestRestartKeepsCache(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	m := startMirror(t, reg.URL, mirrorOpts{})
	img := upstreamtest.RandomImage(t, 2, 32<<10, upstreamtest.DockerManifest)
	want := upstreamtest.Push(t, reg, "app/db:v1", img).Digest.String()
	idx := upstreamtest.PushIndex(t, reg, "app/multi:v1", upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)).Digest.String()
	pullDigest(t, m, "app/db:v1")
	if _, err := remote.Index(m.ref(t, "app/multi:v1"), client(t)...); err != nil {
		t.Fatal(err)
	}
	dir := m.Dir
	m.stop()
	reg.Close()

	// No network at all: the upstream's port is closed now. The repository
	// identity is the upstream's name (its host:port), so the restarted
	// mirror keeps the same upstream URL.
	m3 := startMirror(t, reg.URL, mirrorOpts{dir: dir, retries: -1})
	if got := pullDigest(t, m3, "app/db:v1"); got != want {
		t.Fatalf("after restart with the upstream gone: %s, want %s", got, want)
	}
	if got := pullDigest(t, m3, "app/db@"+want); got != want {
		t.Fatalf("by digest after restart: %s", got)
	}
	ix, err := remote.Index(m3.ref(t, "app/multi:v1"), client(t)...)
	if err != nil {
		t.Fatalf("index after restart: %v", err)
	}
	if d, _ := ix.Digest(); d.String() != idx {
		t.Errorf("index digest %s, want %s", d, idx)
	}
	if bytes, items := m3.Cache.Usage(); bytes == 0 || items < 4 {
		t.Errorf("usage after restart: %d bytes, %d items", bytes, items)
	}
}
