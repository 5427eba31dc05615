package peer

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// layerOf pushes a one-layer image to the harness's registry and
// returns the layer's digest.
func layerOf(t *testing.T, h *harness, size int64) digest.Digest {
	d, _ := layerSized(t, h, size)
	return d
}

// layerSized is layerOf with the layer's size as stored.
func layerSized(t *testing.T, h *harness, size int64) (digest.Digest, int64) {
	t.Helper()
	img := upstreamtest.RandomImage(t, 1, size, upstreamtest.DockerManifest)
	upstreamtest.Push(t, h.reg, repo.Path+":v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	n, _ := layers[0].Size()
	h.up.ResetCounts()
	return digest.Digest(ld.String()), n
}

// TestOneUpstreamFetchPerBlobForTheCluster: the same blob pulled at once
// through every replica is fetched from the registry once, and every
// replica reads the right bytes.
func TestOneUpstreamFetchPerBlobForTheCluster(t *testing.T) {
	h := newHarness(t, 3, time.Hour, nil)
	d, size := layerSized(t, h, 1<<20)
	pullEverywhere(t, h, d, 4)
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 1 {
		t.Errorf("the registry was asked for the blob %d times, want 1", n)
	}
	owner := h.owner(d.String())
	for i, r := range h.replicas {
		if i == owner {
			continue
		}
		if got := testutil.ToFloat64(r.metrics.PeerReceivedBytes); got != float64(size) {
			t.Errorf("replica %d received %v bytes from peers, want %d", i, got, size)
		}
	}
}

// TestDeadOwnerFailsOver: the owner's peer listener closes while a
// replica streams a blob from it; the pull completes through the next
// member, and the owner is marked failed.
func TestDeadOwnerFailsOver(t *testing.T) {
	h := newHarness(t, 3, time.Hour, nil)
	d := layerOf(t, h, 2<<20)
	owner := h.owner(d.String())
	asker := h.replicas[(owner+1)%3]
	// The registry sends slowly, so the owner's stream is cut mid-way.
	h.up.SetFault(func(r *http.Request) upstreamtest.Fault {
		if strings.Contains(r.URL.Path, "/blobs/") {
			return upstreamtest.Fault{BytesPerSec: 4 << 20}
		}
		return upstreamtest.Fault{}
	})
	done := make(chan error, 1)
	go func() { _, err := pull(t.Context(), asker, d); done <- err }()
	waitFor(t, func() bool { return testutil.ToFloat64(asker.metrics.PeerReceivedBytes) > 0 })
	h.replicas[owner].closePeer()
	if err := <-done; err != nil {
		t.Fatalf("the pull failed with the owner gone: %v", err)
	}
	if !slices.Contains(asker.spy.Failed(), h.replicas[owner].addr) {
		t.Errorf("the owner %s was not marked failed: %v", h.replicas[owner].addr, asker.spy.Failed())
	}
	if got := testutil.ToFloat64(asker.metrics.PeerRequests.WithLabelValues("failed_over")); got < 1 {
		t.Errorf("failed_over = %v", got)
	}
}

// TestPeerRoutesNeedTheSecret: without the secret, or with another, the
// peer listener answers 401 and serves nothing.
func TestPeerRoutesNeedTheSecret(t *testing.T) {
	h := newHarness(t, 1, time.Hour, nil)
	d := layerOf(t, h, 1024)
	q := repoQuery(repo.Upstream, repo.Path).Encode()
	for _, auth := range []string{"", "Bearer wrong-secret-of-some-length", "Basic " + testSecret, "Bearer " + testSecret + "x"} {
		for _, rt := range []struct{ method, path string }{
			{http.MethodGet, "/cluster/health"},
			{http.MethodGet, blobsPath + d.String() + "?" + q},
			{http.MethodGet, manifestsPath + "v1?" + q},
			{http.MethodGet, tagsPath + "?" + q},
			{http.MethodPost, pushedPath + "?" + q}, // would make the replica read the bucket on every pull in repo
		} {
			method, path := rt.method, rt.path
			req, _ := http.NewRequest(method, "http://"+h.replicas[0].addr+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%q %s %s: %d, want 401", auth, method, path, resp.StatusCode)
			}
		}
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("the registry was asked %d times for unauthenticated requests", n)
	}
	// With the secret, the same route serves.
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.replicas[0].addr+blobsPath+d.String()+"?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the secret: %d", resp.StatusCode)
	}
}

// TestMalformedPeerRequests are refused with 400 before the cache is asked.
func TestMalformedPeerRequests(t *testing.T) {
	h := newHarness(t, 1, time.Hour, nil)
	good := repoQuery(repo.Upstream, repo.Path).Encode()
	d := "sha256:" + strings.Repeat("a", 64)
	for _, path := range []string{
		blobsPath + "sha256:abc?" + good,
		blobsPath + d + "?upstream=registry.test&repo=Team/App",
		blobsPath + d + "?upstream=registry.test&repo=team/../app",
		blobsPath + d + "?upstream=registry.test&repo=" + strings.Repeat("a", 256),
		blobsPath + d + "?upstream=registry.test&repo=host:5000/app",
		blobsPath + d + "?upstream=a/b&repo=team/app",
		blobsPath + d + "?repo=team/app",
		manifestsPath + "bad tag?" + good,
		manifestsPath + ".hidden?" + good,
		tagsPath + "?" + good + "&n=-1",
		tagsPath + "?" + good + "&last=a%20b",
		pushedPath + "?upstream=registry.test&repo=team/../app",
		pushedPath + "?repo=team/app",
	} {
		method := http.MethodGet
		if strings.HasPrefix(path, pushedPath) {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, "http://"+h.replicas[0].addr+strings.ReplaceAll(path, " ", "%20"), nil)
		req.Header.Set("Authorization", "Bearer "+testSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, resp.StatusCode)
		}
	}
	if n := len(h.up.Requests()); n != 0 {
		t.Errorf("the registry was asked %d times for malformed requests", n)
	}
}

// TestHostilePeerBytesAreNotKept: a peer that answers with other bytes
// of the right length fails the fill, nothing is stored, the peer is
// marked failed, and the retry goes to the next candidate (here self,
// the registry) and gets the right bytes.
func TestHostilePeerBytesAreNotKept(t *testing.T) {
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Length", "4096")
		_, _ = w.Write(bytes.Repeat([]byte{'x'}, 4096))
	}))
	defer hostile.Close()
	liar := strings.TrimPrefix(hostile.URL, "http://")
	h := newHarness(t, 1, time.Hour, func(int) []int { return []int{0} })
	r := h.replicas[0]
	r.spy.order = []string{liar, r.addr}
	d := layerOf(t, h, 4096)
	if _, err := pull(t.Context(), r, d); err == nil {
		t.Fatal("a pull of a liar's bytes succeeded")
	}
	if _, items := r.cache.Usage(); items != 0 {
		t.Errorf("the cache holds %d items after a liar's fill", items)
	}
	if !slices.Contains(r.spy.Failed(), liar) {
		t.Errorf("the liar was not marked failed: %v", r.spy.Failed())
	}
	if _, err := pull(t.Context(), r, d); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 1 {
		t.Errorf("the registry was asked %d times, want 1 (the retry)", n)
	}
}

// TestRelayedUpstreamErrorsDoNotFailOver: a 404 and a 429 the registry
// gives the owner come back as the upstream's own errors, the registry
// is asked once, and no peer is marked failed.
func TestRelayedUpstreamErrorsDoNotFailOver(t *testing.T) {
	h := newHarness(t, 3, time.Hour, nil)
	missing := digest.FromString("not in the registry")
	limited := digest.FromString("rate limited")
	h.up.SetFault(func(r *http.Request) upstreamtest.Fault {
		if strings.Contains(r.URL.Path, limited.String()) {
			return upstreamtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "120"}
		}
		return upstreamtest.Fault{}
	})
	for _, d := range []digest.Digest{missing, limited} {
		asker := h.replicas[(h.owner(d.String())+1)%3]
		_, err := asker.cache.Manifest(t.Context(), repo, d.String(), nil)
		switch d {
		case missing:
			if !errors.Is(err, cache.ErrNotFound) || !errors.Is(err, upstream.ErrNotFound) {
				t.Errorf("missing: %v, want not found", err)
			}
		case limited:
			var ue *upstream.Error
			if !errors.Is(err, upstream.ErrTooManyRequests) || !errors.As(err, &ue) || ue.RetryAfter != 120*time.Second {
				t.Errorf("limited: %v, want 429 with Retry-After 120s", err)
			}
		}
		if n := h.up.Count("", d.String()); n != 1 {
			t.Errorf("%s: the registry was asked %d times, want 1", d, n)
		}
		if f := asker.spy.Failed(); len(f) != 0 {
			t.Errorf("%s: peers marked failed on a relayed error: %v", d, f)
		}
		if got := testutil.ToFloat64(asker.metrics.PeerRequests.WithLabelValues("relayed_error")); got < 1 {
			t.Errorf("%s: relayed_error = %v", d, got)
		}
	}
}

// TestPeerRequestsAreNotForwarded: two replicas that each think the
// other owns everything (views differ for a moment) do not loop: the
// one asked serves from the registry, and each request crosses once.
func TestPeerRequestsAreNotForwarded(t *testing.T) {
	h := newHarness(t, 2, time.Hour, func(i int) []int { return []int{1 - i, i} })
	d := layerOf(t, h, 64<<10)
	a, b := h.replicas[0], h.replicas[1]
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := pull(ctx, a, d); err != nil {
		t.Fatalf("pull through a: %v", err)
	}
	m, err := a.cache.Manifest(ctx, repo, "v1", nil)
	if err != nil {
		t.Fatalf("tag through a: %v", err)
	}
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 1 {
		t.Errorf("blob asked of the registry %d times", n)
	}
	if n := h.up.Count("", "/manifests/v1"); n != 1 {
		t.Errorf("tag asked of the registry %d times", n)
	}
	if got := testutil.ToFloat64(b.metrics.PeerServedTotal.WithLabelValues("blob")); got != 1 {
		t.Errorf("b served %v blob requests, want 1", got)
	}
	if got := testutil.ToFloat64(a.metrics.PeerServedTotal.WithLabelValues("blob")) +
		testutil.ToFloat64(a.metrics.PeerServedTotal.WithLabelValues("manifest")); got != 0 {
		t.Errorf("a served %v peer requests: b forwarded a peer's request", got)
	}
	if len(m.Body) == 0 || len(a.spy.Failed())+len(b.spy.Failed()) != 0 {
		t.Errorf("body %d bytes, failed %v %v", len(m.Body), a.spy.Failed(), b.spy.Failed())
	}
}

// TestTagRevalidatedOncePerTTLForTheCluster: three replicas polling a
// tag see a retag within TTL and a little, and the registry sees at most
// one HEAD or GET of the tag per TTL for all of them.
func TestTagRevalidatedOncePerTTLForTheCluster(t *testing.T) {
	const ttl = 2 * time.Second
	h := newHarness(t, 3, ttl, nil)
	img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest)
	upstreamtest.Push(t, h.reg, repo.Path+":v1", img)
	h.up.ResetCounts()
	start := time.Now()
	var retagged time.Time
	var newDigest digest.Digest
	seen := make([]time.Duration, 3) // after the retag, when each saw it
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < 3*ttl+ttl/2 {
		<-tick.C
		if retagged.IsZero() && time.Since(start) > ttl+ttl/3 {
			desc := upstreamtest.Push(t, h.reg, repo.Path+":v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest))
			retagged, newDigest = time.Now(), desc.Digest
		}
		for i, r := range h.replicas {
			m, err := r.cache.Manifest(t.Context(), repo, "v1", nil)
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			if !retagged.IsZero() && seen[i] == 0 && m.Descriptor.Digest == newDigest {
				seen[i] = time.Since(retagged)
			}
		}
	}
	for i, s := range seen {
		if s == 0 || s > ttl+1500*time.Millisecond {
			t.Errorf("replica %d saw the retag after %v (0: never), want ≤ TTL %v + 1.5s", i, s, ttl)
		}
	}
	elapsed := time.Since(start)
	asked := h.up.Count("", "/manifests/v1")
	if max := int(elapsed/ttl) + 2; asked > max {
		t.Errorf("the registry was asked for the tag %d times in %v, want ≤ %d (once per TTL %v for the cluster)", asked, elapsed, max, ttl)
	}
	t.Logf("tag asked %d times in %v; retag seen after %v", asked, elapsed, seen)
}

// TestWatchCountsChanges: a peer marked failed is one change, and the
// members up drop by one.
func TestWatchCountsChanges(t *testing.T) {
	h := newHarness(t, 3, time.Hour, nil)
	r := h.replicas[0]
	if got := testutil.ToFloat64(r.metrics.ClusterMembersUp); got != 0 {
		t.Fatalf("members up before Watch: %v", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); Watch(ctx, r.spy.real, r.metrics) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return testutil.ToFloat64(r.metrics.ClusterMembersUp) == 3 })
	r.spy.MarkFailed(h.replicas[1].addr)
	waitFor(t, func() bool {
		return testutil.ToFloat64(r.metrics.ClusterMembersUp) == 2 && testutil.ToFloat64(r.metrics.ClusterChanges) >= 1
	})
}

// waitFor polls cond, a metric read, for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond) // polling a metric, not ordering goroutines
	}
}
