package e2e

import (
	"net/http"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/writethrough"
)

// TestWriteThrough pushes to wharf with write-through on and finds the
// same digests in the upstream (a real distribution registry, with token
// auth so pushes need push scope). Then the upstream goes down, a push is
// queued and fails its attempts, wharf restarts, the upstream comes back
// and the queued push arrives; nothing is pending at the end.
func TestWriteThrough(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	dir := t.TempDir()
	opts := pushOpts{dir: dir, writeThrough: &writethrough.Options{
		Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}}
	w := startPusher(t, faulty.URL, opts)

	t.Run("push arrives upstream", func(t *testing.T) {
		img := upstreamtest.RandomImage(t, 2, 64<<10, types.DockerManifestSchema2)
		if err := remote.Write(mustParse(t, w.Host+"/site/wt:v1"), img, client(t)...); err != nil {
			t.Fatal(err)
		}
		waitUpstream(t, reg.Host+"/site/wt:v1", img)
		idx := upstreamtest.RandomIndex(t, 2, types.OCIImageIndex)
		if err := remote.WriteIndex(mustParse(t, w.Host+"/site/wt:multi"), idx, client(t)...); err != nil {
			t.Fatal(err)
		}
		want, _ := idx.Digest()
		waitFor(t, "the index upstream", func() bool {
			got, err := remote.Index(mustParse(t, reg.Host+"/site/wt:multi"), client(t)...)
			if err != nil {
				return false
			}
			d, _ := got.Digest()
			return d == want && validate.Index(got) == nil
		})
	})

	t.Run("outage and restart lose nothing", func(t *testing.T) {
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
		})
		img := upstreamtest.RandomImage(t, 2, 32<<10, types.OCIManifestSchema1)
		if err := remote.Write(mustParse(t, w.Host+"/site/wt:v2"), img, client(t)...); err != nil {
			t.Fatalf("push while the upstream is down: %v", err)
		}
		waitFor(t, "failed attempts", func() bool {
			return testutil.ToFloat64(w.Metrics.WriteThroughFailures.WithLabelValues("unavailable")) >= 2
		})
		if n := testutil.ToFloat64(w.Metrics.WriteThroughPending); n != 1 {
			t.Errorf("pending %v, want 1", n)
		}
		w.stop()
		w = startPusher(t, faulty.URL, opts)
		if n := testutil.ToFloat64(w.Metrics.WriteThroughPending); n != 1 {
			t.Errorf("pending after restart %v, want 1", n)
		}
		faulty.SetFault(nil)
		waitUpstream(t, reg.Host+"/site/wt:v2", img)
		waitFor(t, "an empty queue", func() bool { return testutil.ToFloat64(w.Metrics.WriteThroughPending) == 0 })
	})
}

// TestWriteThroughSync makes the client's manifest PUT wait: when it
// returns, the upstream has the image; with the upstream down the PUT
// fails with 502 and the push stays queued.
func TestWriteThroughSync(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	w := startPusher(t, faulty.URL, pushOpts{writeThrough: &writethrough.Options{
		Sync: true, Backoff: time.Hour,
	}})
	img := upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
	if err := remote.Write(mustParse(t, w.Host+"/site/sync:v1"), img, client(t)...); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(mustParse(t, reg.Host+"/site/sync:v1"), client(t)...); err != nil {
		t.Fatalf("upstream lacks the image when the push returned: %v", err)
	}
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
	})
	img2 := upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
	err := remote.Write(mustParse(t, w.Host+"/site/sync:v2"), img2, append(client(t), remote.WithRetryStatusCodes())...)
	if err == nil {
		t.Fatal("push succeeded while the upstream was down")
	}
	if n := testutil.ToFloat64(w.Metrics.WriteThroughPending); n != 1 {
		t.Errorf("pending %v, want 1", n)
	}
}

func waitUpstream(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	want, _ := img.Digest()
	waitFor(t, ref+" upstream", func() bool {
		got, err := remote.Image(mustParse(t, ref), client(t)...)
		if err != nil {
			return false
		}
		d, _ := got.Digest()
		return d == want && validate.Image(got) == nil
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
