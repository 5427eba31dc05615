package cache

import (
	"bytes"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestBlobSegmentedWithBlobRanger: a big blob's miss is fetched in ranges
// from an Origin that is a BlobRanger (the registry client), and in one
// stream from one that is not; either way the bytes come once and are
// stored.
func TestBlobSegmentedWithBlobRanger(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 1<<20, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "team/big:v1", img)
	layers, _ := img.Layers()
	h, _ := layers[0].Digest()
	d := digest.Digest(h.String())
	size, _ := layers[0].Size()
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	up, err := upstream.New(upstream.Options{Name: "registry.test", URL: faulty.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()

	for _, tt := range []struct {
		name   string
		origin Origin
		gets   int
	}{
		{"ranger", up, 4},
		{"no ranger", ttlOrigin{Origin: up}, 1}, // embedding Origin hides GetBlobRange
	} {
		t.Run(tt.name, func(t *testing.T) {
			faulty.ResetCounts()
			c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{tt.origin}, SegmentThreshold: 256 << 10, Segments: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, err := c.Blob(t.Context(), Repo{Upstream: "registry.test", Path: "team/big"}, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b.Fill.Reader(t.Context(), 0))
			if err == nil {
				err = b.Fill.Wait(t.Context())
			}
			b.Close()
			if err != nil || int64(len(got)) != size || digest.FromBytes(got) != d {
				t.Fatalf("read %d bytes of %d, %v", len(got), size, err)
			}
			if n := faulty.BlobGets(); n != tt.gets {
				t.Errorf("%d blob GETs, want %d", n, tt.gets)
			}
			if n := faulty.BlobBytes(); n != size {
				t.Errorf("the registry sent %d bytes for a blob of %d", n, size)
			}
			hit, err := c.Blob(t.Context(), Repo{Upstream: "registry.test", Path: "team/big"}, d)
			if err != nil || hit.File == nil {
				t.Fatalf("second read is not a hit: %v", err)
			}
			var buf bytes.Buffer
			io.Copy(&buf, hit.File)
			hit.Close()
			if !bytes.Equal(buf.Bytes(), got) {
				t.Error("stored bytes differ")
			}
		})
	}
}
