package e2e

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestCachedTagServedToEveryClientWhileDown: a tag pulled through wharf by
// one kind of client is served to the others while the upstream is down,
// although each sends its own Accept set (wharf keeps a tag record per
// set): docker, containerd and a client naming no type get the cached
// manifest, by GET and by HEAD; a client that accepts none of the cached
// manifest's type still gets the 503 of a miss.
func TestCachedTagServedToEveryClientWhileDown(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	front := newSwitchable(t, reg.URL)
	m := startMirror(t, front.URL, mirrorOpts{tagTTL: time.Millisecond, probeMin: time.Hour})
	want := upstreamtest.Push(t, reg, "team/app:v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
	if got := pullDigest(t, m, "team/app:v1"); got != want.Digest.String() { // go-containerregistry's Accept set
		t.Fatalf("first pull: %s, want %s", got, want.Digest)
	}
	front.refuse()
	waitFor(t, "the upstream to be marked down", func() bool {
		drain(get(t, m.URL+"/v2/team/app/manifests/probe").Body)
		return testutil.ToFloat64(m.Metrics.UpstreamUp.WithLabelValues(m.up.Name())) == 0
	})
	stale := func() float64 { return testutil.ToFloat64(m.Metrics.StaleServed.WithLabelValues("tag")) }

	url := m.URL + "/v2/team/app/manifests/v1"
	for name, accept := range map[string]string{
		// As docker 20.10 and containerd 1.6 send them.
		"docker": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
			"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v1+prettyjws, application/json",
		"containerd": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
			"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*",
		"no Accept": "",
	} {
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			before := stale()
			var hdr []string
			if accept != "" {
				hdr = []string{"Accept", accept}
			}
			resp := do(t, method, url, hdr...)
			drain(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want.Digest.String() {
				t.Errorf("%s %s while down: %d %s, want 200 and the cached %s", name, method, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want.Digest)
			}
			if stale() != before+1 {
				t.Errorf("%s %s: wharf_stale_served_total{kind=tag} went from %v to %v, want one more", name, method, before, stale())
			}
		}
	}

	resp := get(t, url, "Accept", "application/vnd.oci.image.index.v1+json")
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a client accepting only an OCI index while down: %d %s, want 503 (the cached manifest is not one)", resp.StatusCode, body)
	}
}
