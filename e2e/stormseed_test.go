package e2e

import (
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// stormLayerSizes run from a few KiB to a few MiB.
var stormLayerSizes = []int64{4 << 10, 48 << 10, 384 << 10, 1536 << 10, 3 << 20}

// seedStormImages pushes the storm's 20 images to reg, of mixed kinds:
// every fourth an index (OCI index and Docker manifest list in turn, of
// 2 or 3 platforms), the others single-platform images, Docker schema 2
// and OCI in turn, of 1 to 3 layers of stormLayerSizes. It returns them
// as repo:tag@digest (the storm resolves the tag and checks the digest)
// and the bytes they hold in all: manifests, configs and layers.
func seedStormImages(t *testing.T, reg *upstreamtest.Registry) (refs []string, total int64) {
	t.Helper()
	for i := range 20 {
		ref := fmt.Sprintf("storm/img%02d:v1", i)
		if i%4 == 3 {
			mt := upstreamtest.OCIIndex
			if i%8 == 7 {
				mt = upstreamtest.DockerManifestList
			}
			idx := upstreamtest.RandomIndex(t, 2+i%2, mt)
			d := upstreamtest.PushIndex(t, reg, ref, idx)
			refs, total = append(refs, ref+"@"+d.Digest.String()), total+d.Size+indexBytes(t, idx)
			continue
		}
		mt := upstreamtest.DockerManifest
		if i%2 == 1 {
			mt = upstreamtest.OCIManifest
		}
		img := upstreamtest.RandomImage(t, 1+i%3, stormLayerSizes[i%len(stormLayerSizes)], mt)
		d := upstreamtest.Push(t, reg, ref, img)
		refs, total = append(refs, ref+"@"+d.Digest.String()), total+d.Size+imageBytes(t, img)
	}
	return refs, total
}

// imageBytes is the size of img's config and layers.
func imageBytes(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// indexBytes is the size of idx's child manifests and their content.
func indexBytes(t *testing.T, idx v1.ImageIndex) int64 {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		n += d.Size + imageBytes(t, img)
	}
	return n
}
