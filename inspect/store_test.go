package inspect_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/warm"
)

// mirror is a store in a temp dir in front of a real registry, filled
// the way clients fill it: by pulling through it.
type mirror struct {
	reg  *upstreamtest.Registry
	c    *cache.Cache
	dir  string
	m    *metrics.Metrics
	name string // the upstream's name in cache.Repo
}

func newMirror(t *testing.T) *mirror {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	m := metrics.New(prometheus.NewRegistry())
	up, err := upstream.New(upstream.Options{URL: reg.URL, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	dir := t.TempDir()
	c, err := cache.Open(cache.Options{Dir: dir, Origins: []cache.Origin{up}, TagTTL: time.Hour, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mirror{reg: reg, c: c, dir: dir, m: m, name: up.Name()}
}

func (m *mirror) repo(path string) cache.Repo { return cache.Repo{Upstream: m.name, Path: path} }

// image is what pull stored.
type image struct {
	manifest, config digest.Digest
	layers           []digest.Digest
	size             int64 // manifest, config and layers
}

// pull pushes an image of layers to the registry as path:tag and pulls
// it through the store, as a client would (package warm's read path):
// its manifest, then every blob to its end.
func (m *mirror) pull(t *testing.T, path, tag string, layers ...v1.Layer) image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	desc := upstreamtest.Push(t, m.reg, path+":"+tag, img)
	if _, err := warm.Image(context.Background(), m.c, m.repo(path), tag, nil, nil); err != nil {
		t.Fatal(err)
	}
	out := image{manifest: desc.Digest, size: desc.Size}
	cfg, _ := img.ConfigName()
	raw, _ := img.RawConfigFile()
	out.config = digest.Digest(cfg.String())
	out.size += int64(len(raw))
	for _, l := range layers {
		d, _ := l.Digest()
		n, _ := l.Size()
		out.layers = append(out.layers, digest.Digest(d.String()))
		out.size += n
	}
	return out
}

// layer is a random layer of n bytes.
func layer(t *testing.T, n int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(n, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// blobPath is where the disk store keeps d.
func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
}
