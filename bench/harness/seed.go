package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// images are what the harness pushed to the upstream, and the references
// the scenarios pull.
type images struct {
	app          string // repo:tag of the multi-layer image's index (linux/amd64 and linux/arm64)
	single       string // repo:tag naming the amd64 image manifest itself
	byDigest     string // repo@digest of the amd64 image manifest
	big          string // repo@digest of the image whose one layer is the large blob
	appBytes     int64  // what pulling app moves: index, manifest, config, layers
	bigBytes     int64
	manifests    map[string]string // ref → file, for the baseline's bare handler
	peerTags     []string          // the peer-hop scenario's tags, PeerTags per round
	peerManifest int64             // the size of the manifest they name
	wan          string            // repo:tag of the WAN image's index (issue 14)
	wanBytes     int64
}

// seededLayer is a layer of ChaCha8 output: incompressible, like real
// compressed layers, generated as it is read so a 1 GiB layer never sits in
// memory, and the same each time it is read, as go-containerregistry
// expects.
type seededLayer struct {
	seed uint64
	size int64
	hash v1.Hash
}

func newSeededLayer(seed uint64, size int64) (*seededLayer, error) {
	l := &seededLayer{seed: seed, size: size}
	h := sha256.New()
	r, _ := l.Compressed()
	if _, err := io.CopyBuffer(h, r, make([]byte, 1<<20)); err != nil {
		return nil, err
	}
	l.hash = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	return l, nil
}

func (l *seededLayer) Digest() (v1.Hash, error) { return l.hash, nil }
func (l *seededLayer) DiffID() (v1.Hash, error) { return l.hash, nil }
func (l *seededLayer) Size() (int64, error)     { return l.size, nil }
func (l *seededLayer) MediaType() (types.MediaType, error) {
	return types.OCIUncompressedLayer, nil
}
func (l *seededLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l *seededLayer) Compressed() (io.ReadCloser, error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], l.seed)
	copy(key[8:], "wharf-bench-layer")
	return io.NopCloser(io.LimitReader(rand.NewChaCha8(key), l.size)), nil
}

func seededImage(seed uint64, layers int, size int64, arch string) (v1.Image, error) {
	sizes := make([]int64, layers)
	for i := range sizes {
		sizes[i] = size
	}
	return seededImageOf(seed, sizes, arch)
}

// seededImageOf is an image of seeded layers of the given sizes, in order.
func seededImageOf(seed uint64, sizes []int64, arch string) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, size := range sizes {
		l, err := newSeededLayer(seed*1000+uint64(i), size)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	return mutate.ConfigFile(img, cfg)
}

// upstreamRef names repo:tag on the upstream itself (not the relay).
func (h *harness) upstreamRef(s string) name.Reference {
	r, err := name.ParseReference(h.upstream.url[len("http://"):]+"/"+s, name.Insecure)
	if err != nil {
		panic(err) // the harness's references are constants
	}
	return r
}

// pushIndex pushes an OCI index of amd64 and arm64 under tag (as
// multi-platform images are published: the client follows the index to
// its platform) and returns what a linux/amd64 pull of it moves.
func (h *harness) pushIndex(ctx context.Context, tag string, amd64, arm64 v1.Image) (int64, error) {
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	if err := remote.WriteIndex(h.upstreamRef(tag), idx, remote.WithContext(ctx), remote.WithJobs(4)); err != nil {
		return 0, fmt.Errorf("push %s: %w", tag, err)
	}
	n, err := pullBytes(amd64)
	if err != nil {
		return 0, err
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return 0, err
	}
	return n + int64(len(raw)), nil
}

// seedWAN pushes the WAN scenarios' image (issue 14): p.WANLayers, mixed
// sizes, behind an index as the app image is. It runs after seed, which
// sets h.img.
func (h *harness) seedWAN(ctx context.Context) error {
	amd64, err := seededImageOf(5, h.p.WANLayers, "amd64")
	if err != nil {
		return err
	}
	arm64, err := seededImage(6, 1, 4<<10, "arm64")
	if err != nil {
		return err
	}
	n, err := h.pushIndex(ctx, "bench/wan:v1", amd64, arm64)
	h.img.wan, h.img.wanBytes = "bench/wan:v1", n
	return err
}

// seed pushes the images to the upstream directly (not through the relay:
// seeding is not measured) and writes their manifests for the baseline.
func (h *harness) seed(ctx context.Context) error {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithJobs(4)}
	ref := h.upstreamRef

	amd64, err := seededImage(1, h.p.Layers, h.p.LayerSize, "amd64")
	if err != nil {
		return err
	}
	arm64, err := seededImage(2, 1, 4<<10, "arm64")
	if err != nil {
		return err
	}
	appBytes, err := h.pushIndex(ctx, "bench/app:v1", amd64, arm64)
	if err != nil {
		return err
	}
	if err := remote.Write(ref("bench/app:single"), amd64, opts...); err != nil {
		return fmt.Errorf("push bench/app:single: %w", err)
	}
	big, err := seededImage(3, 1, h.p.BlobSize, "amd64")
	if err != nil {
		return err
	}
	if err := remote.Write(ref("bench/big:v1"), big, opts...); err != nil {
		return fmt.Errorf("push bench/big:v1: %w", err)
	}

	bigBytes, err := pullBytes(big)
	if err != nil {
		return err
	}
	amd64Digest, _ := amd64.Digest()
	bigDigest, _ := big.Digest()
	h.img = images{
		app: "bench/app:v1", single: "bench/app:single",
		byDigest: "bench/app@" + amd64Digest.String(), big: "bench/big@" + bigDigest.String(),
		appBytes: appBytes, bigBytes: bigBytes,
		manifests: map[string]string{},
	}
	dir := filepath.Join(h.work, "manifests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for ref, img := range map[string]v1.Image{"single": amd64, bigDigest.String(): big} {
		raw, err := img.RawManifest()
		if err != nil {
			return err
		}
		file := filepath.Join(dir, fmt.Sprintf("%d.json", len(h.img.manifests)))
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			return err
		}
		h.img.manifests[ref] = file // the baseline serves it by its digest too
	}
	return nil
}

// pullBytes is what a pull of img moves: its manifest, config and layers.
func pullBytes(img v1.Image) (int64, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}
