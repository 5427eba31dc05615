package cache

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
)

// TestRemoveTakesTheLockedPath: Remove, which verify --repair (package
// inspect) quarantines corrupt items through, takes them out the way
// eviction and deletes do, so afterwards the usage totals and their
// gauges, the hot manifests, the hot links and the access log all agree
// with what the store holds. inspect's TestRepairRemovesThroughTheLockedPath
// checks the same repair from outside, through Verify.
func TestRemoveTakesTheLockedPath(t *testing.T) {
	dir := t.TempDir()
	m := metrics.New(prometheus.NewRegistry())
	c, err := Open(Options{Dir: dir, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	repo := Repo{Upstream: "example.com", Path: "team/app"}

	layer := randomBytes(1000)
	dLayer := ingestBytes(t, c, layer)
	config := []byte(`{}`)
	dConfig := ingestBytes(t, c, config)
	body, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: dConfig, Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: dLayer, Size: int64(len(layer))}},
	})
	desc, err := c.IngestManifest(repo, "v1", ocispec.MediaTypeImageManifest, digest.FromBytes(body), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.link(repo, desc.Digest, dLayer); err != nil {
		t.Fatal(err)
	}
	if _, err := c.storedManifest(desc.Digest); err != nil { // now hot
		t.Fatal(err)
	}

	// Rot: the manifest's and the layer's bytes change on disk.
	for _, d := range []digest.Digest{desc.Digest, dLayer} {
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
		if err := os.WriteFile(p, []byte("rot"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []digest.Digest{desc.Digest, dLayer} {
		if err := c.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Remove(dLayer); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing %s again: %v, want ErrNotFound (its size must not be taken off twice)", dLayer, err)
	}

	var held, items int64
	if err := c.store.Walk(ctx, func(_ digest.Digest, size int64) error { held, items = held+size, items+1; return nil }); err != nil {
		t.Fatal(err)
	}
	if items != 1 || held != int64(len(config)) {
		t.Fatalf("the store holds %d items of %d bytes, want only the config", items, held)
	}
	if b, n := c.Usage(); b != held || n != items {
		t.Errorf("Usage says %d bytes in %d items, the store holds %d in %d", b, n, held, items)
	}
	if got := testutil.ToFloat64(m.CacheSize); got != float64(held) {
		t.Errorf("size gauge %v, the store holds %d bytes", got, held)
	}
	if got := testutil.ToFloat64(m.CacheBlobs); got != float64(items) {
		t.Errorf("item gauge %v, the store holds %d items", got, items)
	}
	for _, d := range []digest.Digest{desc.Digest, dLayer} {
		if c.manifests.Contains(d) {
			t.Errorf("%s is still a hot manifest", d)
		}
		if c.links.Contains(linkCacheKey(repo, d)) {
			t.Errorf("%s is still a hot link of %s", d, repo)
		}
		if c.access.recent.Contains(d) {
			t.Errorf("%s is still in the access log", d)
		}
	}
}
