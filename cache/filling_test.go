package cache

import (
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// gatedOrigin answers blob requests at once but holds their bodies until
// open is closed: a fill that has started and not ended.
type gatedOrigin struct {
	Origin
	open chan struct{}
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

// TestFillingReportsARunningFill: Filling is true exactly while a fill of
// the digest runs: not before anyone asked, not once it is stored.
func TestFillingReportsARunningFill(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	up, err := upstream.New(upstream.Options{Name: "registry.test", URL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	open := make(chan struct{})
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{gatedOrigin{up, open}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	layers, _ := img.Layers()
	h, _ := layers[0].Digest()
	d := digest.Digest(h.String())

	if c.Filling(d) {
		t.Error("filling before anyone asked")
	}
	b, err := c.Blob(t.Context(), Repo{Upstream: "registry.test", Path: "team/app"}, d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Fill == nil || !c.Filling(d) {
		t.Fatalf("a fill held open: fill %v, Filling %v; want a fill, true", b.Fill != nil, c.Filling(d))
	}
	close(open)
	if err := b.Fill.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Filling(d) {
		t.Error("filling after the fill ended")
	}
	if _, ok := c.HasContent(d); !ok {
		t.Error("not stored after the fill")
	}
}
