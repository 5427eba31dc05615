package peer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPeerWithoutTheUpstreamIsSkippedNotFailed: replica 1, ranked first
// by replica 0 for every key, is configured without the registry (a
// rolling change of the configuration). Replica 0 asks it, hears that it
// lacks the upstream, and asks the next member (itself, the registry)
// for that request, without marking it failed: every pull still
// succeeds, and replica 1 is asked again for the next one.
func TestPeerWithoutTheUpstreamIsSkippedNotFailed(t *testing.T) {
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	h.start(t, 2, func(int) []int { return []int{1, 0} }, func(r *replica, o cache.Origin, _ *Client) cache.Options {
		opts := cache.Options{Dir: t.TempDir(), TagTTL: time.Hour, Metrics: r.metrics}
		if len(h.replicas) == 0 { // replica 0 has the registry; replica 1 none
			opts.Origins = []cache.Origin{o}
		}
		return opts
	}, nil)
	r := h.replicas[0]
	for i, tag := range []string{"v1", "v2"} {
		img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
		want := upstreamtest.Push(t, h.reg, repo.Path+":"+tag, img).Digest
		m, err := r.cache.Manifest(t.Context(), repo, tag, tagAccept)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if m.Descriptor.Digest != want {
			t.Fatalf("%s is %s, want %s", tag, m.Descriptor.Digest, want)
		}
		if f := r.spy.Failed(); len(f) != 0 {
			t.Fatalf("%s: replica 1 was marked failed: %v", tag, f)
		}
		if n := testutil.ToFloat64(r.metrics.PeerRequests.WithLabelValues("skipped")); n != float64(i+1) {
			t.Errorf("after %s: %v requests skipped replica 1, want %d", tag, n, i+1)
		}
	}
}

// TestBrokenPeerBodyResumesFromTheNext: a peer whose blob body breaks
// half way is marked failed and not asked again for the resume: the fill
// resumes from the next member (here self, the registry, with a Range),
// and the pull gets every byte.
func TestBrokenPeerBodyResumesFromTheNext(t *testing.T) {
	h := newHarness(t, 1, time.Hour, func(int) []int { return []int{0} })
	r := h.replicas[0]
	img := upstreamtest.RandomImage(t, 1, 64<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, h.reg, repo.Path+":v1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	breaking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		asked.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection breaks mid-body
	}))
	defer breaking.Close()
	peerAddr := strings.TrimPrefix(breaking.URL, "http://")
	r.spy.order = []string{peerAddr, r.addr}
	h.up.ResetCounts()
	d := digest.Digest(ld.String())
	if _, err := pull(t.Context(), r, d); err != nil {
		t.Fatalf("the pull: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the breaking peer was asked %d times, want 1", n)
	}
	if n := h.up.Count(http.MethodGet, "/blobs/"+d.String()); n != 1 {
		t.Errorf("the registry was asked for the blob %d times, want 1 (the resume)", n)
	}
	if f := r.spy.Failed(); !slices.Equal(f, []string{peerAddr}) {
		t.Errorf("marked failed: %v, want the breaking peer once", f)
	}
}
