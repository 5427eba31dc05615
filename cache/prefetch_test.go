package cache

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// gatedOrigin answers blob requests at once but holds their bodies until
// open is closed: a fill that has started and not ended.
type gatedOrigin struct {
	Origin
	open  chan struct{}
	heads *atomic.Int32 // blob HEADs asked
}

func (o gatedOrigin) HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	o.heads.Add(1)
	return o.Origin.HeadBlob(ctx, repo, d)
}

func (o gatedOrigin) GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	rc, size, err := o.Origin.GetBlob(ctx, repo, d, offset)
	if err != nil {
		return nil, 0, err
	}
	return gatedBody{ReadCloser: rc, open: o.open}, size, nil
}

type gatedBody struct {
	io.ReadCloser
	open chan struct{}
}

func (b gatedBody) Read(p []byte) (int, error) {
	<-b.open
	return b.ReadCloser.Read(p)
}

// TestPrefetchStartsOnlyWhenNothingHeld: Prefetch starts a fill of a
// digest nothing holds; while that fill runs, or once it is stored, a
// Prefetch under any repository gets nil, joins nothing, asks the upstream
// nothing (no HEAD to vouch for the other repository) and links nothing.
// A client of the repository joins the fill with no HEAD either. The
// repository is linked once the bytes are stored, not before. Only the
// client's read counts a cache miss.
func TestPrefetchStartsOnlyWhenNothingHeld(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	upstreamtest.Push(t, reg, "team/copy:v1", img)
	up, err := upstream.New(upstream.Options{Name: "registry.test", URL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	o := gatedOrigin{Origin: up, open: make(chan struct{}), heads: new(atomic.Int32)}
	m := metrics.New(prometheus.NewRegistry())
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{o}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	layers, _ := img.Layers()
	h, _ := layers[0].Digest()
	d := digest.Digest(h.String())
	app := Repo{Upstream: "registry.test", Path: "team/app"}
	other := Repo{Upstream: "registry.test", Path: "team/copy"}

	fw, err := c.Prefetch(t.Context(), app, d)
	if err != nil || fw == nil {
		t.Fatalf("Prefetch of a cold blob: %v, %v; want a fill", fw, err)
	}
	defer fw.Close()
	if c.linkedHere(app, d) {
		t.Error("the repository a prefetch fill started under is linked before its bytes are verified")
	}
	if !c.vouches.has(d, app) {
		t.Error("the upstream's answer under the fill's repository is not remembered for the fill")
	}
	b, err := c.Blob(t.Context(), app, d) // a client of the same repository joins, vouched for
	if err != nil || b.Fill == nil {
		t.Fatalf("client read during the prefetch fill: %v; want the fill joined", err)
	}
	b.Close()
	if _, err := c.StatBlob(t.Context(), app, d); err != nil { // a client's HEAD likewise
		t.Fatal(err)
	}
	for _, r := range []Repo{app, other} { // while the fill runs
		if again, err := c.Prefetch(t.Context(), r, d); again != nil || err != nil {
			t.Errorf("Prefetch %s of a blob being filled: %v, %v; want nil, nil", r, again, err)
		}
	}
	close(o.open)
	if err := fw.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !c.linkedHere(app, d) {
		t.Error("the repository a prefetch fill started under is not linked once its bytes are stored")
	}
	if again, err := c.Prefetch(t.Context(), other, d); again != nil || err != nil {
		t.Errorf("Prefetch of a stored blob: %v, %v; want nil, nil", again, err)
	}
	if n := o.heads.Load(); n != 0 {
		t.Errorf("the upstream was sent %d blob HEADs, want 0", n)
	}
	if c.linkedHere(other, d) {
		t.Error("a Prefetch that found the blob held linked another repository")
	}
	misses0 := 1.0 // the client's read
	hits, misses := testutil.ToFloat64(m.CacheHits.WithLabelValues("blob")), testutil.ToFloat64(m.CacheMisses.WithLabelValues("blob"))
	if hits != 0 || misses != misses0 {
		t.Errorf("blob hits %v, misses %v; want 0, %v (the client's read only)", hits, misses, misses0)
	}
}

// TestFullPastTheHighWatermark: Full is true once stored content passes
// the high watermark (pinned, so eviction cannot bring it under), and
// never without a cap.
func TestFullPastTheHighWatermark(t *testing.T) {
	c, err := Open(Options{Dir: t.TempDir(), MaxSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put := func(n int) {
		b := randomBytes(n)
		d := digest.FromBytes(b)
		if err := c.putBytes(t.Context(), d, b); err != nil {
			t.Fatal(err)
		}
		if err := c.recordContent(d, int64(n), "", nil, true); err != nil {
			t.Fatal(err)
		}
	}
	put(1000)
	if c.Full() {
		t.Error("full at half the cap")
	}
	put(1000) // 2000 > 0.95 × 2000
	if !c.Full() {
		t.Error("not full past the high watermark")
	}
	uncapped := openTest(t, t.TempDir())
	defer uncapped.Close()
	if uncapped.Full() {
		t.Error("a cache without a cap is full")
	}
}
