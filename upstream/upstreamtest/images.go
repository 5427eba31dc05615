package upstreamtest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types RandomImage and RandomIndex build, re-exported so
// tests need not import go-containerregistry's types for them.
const (
	DockerManifest     = types.DockerManifestSchema2 // application/vnd.docker.distribution.manifest.v2+json
	DockerManifestList = types.DockerManifestList    // application/vnd.docker.distribution.manifest.list.v2+json
	OCIManifest        = types.OCIManifestSchema1    // application/vnd.oci.image.manifest.v1+json
	OCIIndex           = types.OCIImageIndex         // application/vnd.oci.image.index.v1+json
)

// RandomImage builds an image of layers random, gzipped layers of about
// layerSize bytes each (random bytes don't compress), with the manifest
// media type mt, DockerManifest or OCIManifest; config and layer media
// types follow it.
func RandomImage(t testing.TB, layers int, layerSize int64, mt types.MediaType) v1.Image {
	t.Helper()
	return randomImage(t, layers, layerSize, mt, "amd64")
}

func randomImage(t testing.TB, layers int, layerSize int64, mt types.MediaType, arch string) v1.Image {
	t.Helper()
	configMT, layerMT := types.DockerConfigJSON, types.DockerLayer
	switch mt {
	case DockerManifest:
	case OCIManifest:
		configMT, layerMT = types.OCIConfigJSON, types.OCILayer
	default:
		t.Fatalf("upstreamtest: RandomImage: media type %q is not an image manifest", mt)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, mt), configMT)
	for range layers {
		l, err := random.Layer(layerSize, layerMT)
		if err != nil {
			t.Fatalf("upstreamtest: random layer: %v", err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatalf("upstreamtest: append layer: %v", err)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("upstreamtest: config: %v", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatalf("upstreamtest: config: %v", err)
	}
	return img
}

// RandomIndex builds an index (OCIIndex, or DockerManifestList) of n
// random one-layer images of 1 KiB layers, for linux on n different
// architectures (amd64, arm64, …). The images' media types match the
// index's.
func RandomIndex(t testing.TB, n int, mt types.MediaType) v1.ImageIndex {
	t.Helper()
	imageMT := OCIManifest
	switch mt {
	case OCIIndex:
	case DockerManifestList:
		imageMT = DockerManifest
	default:
		t.Fatalf("upstreamtest: RandomIndex: media type %q is not an index", mt)
	}
	archs := []string{"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
	idx := mutate.IndexMediaType(empty.Index, mt)
	for i := range n {
		arch := archs[i%len(archs)]
		if i >= len(archs) {
			arch = fmt.Sprintf("%s-%d", arch, i)
		}
		img := randomImage(t, 1, 1024, imageMT, arch)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}

// Push writes img to r as ref ("repo:tag", "repo@sha256:…" or "repo"
// for :latest), with r's credentials if it has any, and returns the
// manifest's descriptor.
func Push(t testing.TB, r *Registry, ref string, img v1.Image) ocispec.Descriptor {
	t.Helper()
	dst, opts, done := pushTarget(t, r, ref)
	defer done()
	if err := remote.Write(dst, img, opts...); err != nil {
		t.Fatalf("upstreamtest: push %s: %v", dst, err)
	}
	return describe(t, img)
}

// PushIndex writes idx and its images to r as ref, like Push.
func PushIndex(t testing.TB, r *Registry, ref string, idx v1.ImageIndex) ocispec.Descriptor {
	t.Helper()
	dst, opts, done := pushTarget(t, r, ref)
	defer done()
	if err := remote.WriteIndex(dst, idx, opts...); err != nil {
		t.Fatalf("upstreamtest: push index %s: %v", dst, err)
	}
	return describe(t, idx)
}

// pushTarget parses ref against r and returns remote options with a
// transport of its own, whose connections done closes: the shared
// default transport would keep idle connections (and goroutines) alive
// past the test.
func pushTarget(t testing.TB, r *Registry, ref string) (name.Reference, []remote.Option, func()) {
	t.Helper()
	dst, err := name.ParseReference(r.Ref(ref), name.Insecure)
	if err != nil {
		t.Fatalf("upstreamtest: reference %q: %v", ref, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	opts := []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(tr)}
	if r.Username != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password}))
	}
	return dst, opts, tr.CloseIdleConnections
}

type manifestDescriber interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
}

func describe(t testing.TB, m manifestDescriber) ocispec.Descriptor {
	t.Helper()
	h, err := m.Digest()
	if err != nil {
		t.Fatalf("upstreamtest: digest: %v", err)
	}
	size, err := m.Size()
	if err != nil {
		t.Fatalf("upstreamtest: size: %v", err)
	}
	mt, err := m.MediaType()
	if err != nil {
		t.Fatalf("upstreamtest: media type: %v", err)
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(h.String()), Size: size}
}
