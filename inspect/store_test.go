package inspect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
)

// openStore opens an empty store in a temp dir, closed with the test.
func openStore(t *testing.T) (*cache.Cache, string, *metrics.Metrics) {
	t.Helper()
	dir := t.TempDir()
	m := metrics.New(prometheus.NewRegistry())
	c, err := cache.Open(cache.Options{Dir: dir, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir, m
}

// image is what putImage stored.
type image struct {
	manifest, config digest.Digest
	layers           []digest.Digest
	size             int64 // manifest, config and layers
}

// putImage stores an image of the given layers as repo:tag (pushed, as an
// import stores it) and returns what it stored.
func putImage(t *testing.T, c *cache.Cache, repo cache.Repo, tag string, layers ...[]byte) image {
	t.Helper()
	ctx := context.Background()
	var img image
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if err := c.ImportBlob(ctx, d, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	config := []byte(`{"architecture":"amd64","os":"linux","tag":"` + tag + `"}`)
	img.config = put(config)
	img.size = int64(len(config))
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.config, Size: int64(len(config))},
	}
	for _, l := range layers {
		d := put(l)
		img.layers = append(img.layers, d)
		img.size += int64(len(l))
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(l))})
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.ImportManifest(repo, tag, ocispec.MediaTypeImageManifest, "", body)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest = desc.Digest
	img.size += int64(len(body))
	return img
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// blobPath is where the disk store keeps d.
func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
}
