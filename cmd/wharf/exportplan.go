package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/manifest"
)

// exportImage is one selected tag and everything of it the export writes,
// gathered and checked before the first byte is written: a tar cannot take
// back half an image.
type exportImage struct {
	tagged    cache.Tagged
	top       ocispec.Descriptor // what index.json lists for the tag
	manifests []*cache.Manifest  // top and the children the store holds
	blobs     []ocispec.Descriptor
	missing   int // children of an index the store does not hold
	// The one image docker format writes (config and layers in order).
	config ocispec.Descriptor
	layers []ocispec.Descriptor
}

func (p *exportImage) name() string {
	if p.tagged.Tag == "" {
		return p.tagged.Repo.String() + "@" + p.top.Digest.String()
	}
	return fullName(p.tagged.Repo, p.tagged.Tag)
}

// planExport walks t's manifests in the store. In docker format an index
// is narrowed to its manifest for plat, since docker load takes one
// image per name.
func planExport(c *cache.Cache, t cache.Tagged, docker bool, plat ocispec.Platform) (*exportImage, error) {
	m, err := c.StoredManifest(t.Descriptor.Digest)
	if err != nil {
		return nil, err
	}
	p := &exportImage{tagged: t, top: m.Descriptor}
	if docker && manifest.IsIndex(m.Descriptor.MediaType) {
		if m, err = pickPlatform(c, m, plat); err != nil {
			return nil, err
		}
		p.top = m.Descriptor
	}
	if err := p.walk(c, m, docker); err != nil {
		return nil, err
	}
	return p, nil
}

func pickPlatform(c *cache.Cache, idx *cache.Manifest, plat ocispec.Platform) (*cache.Manifest, error) {
	parsed, err := manifest.Parse(idx.Body)
	if err != nil {
		return nil, err
	}
	for _, child := range parsed.Manifests {
		if !cache.MatchPlatform(child.Platform, []ocispec.Platform{plat}) {
			continue
		}
		if m, err := c.StoredManifest(child.Digest); err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no %s image of it in the store (see --platform)", cache.PlatformsString([]ocispec.Platform{plat}))
}

func (p *exportImage) walk(c *cache.Cache, m *cache.Manifest, docker bool) error {
	p.manifests = append(p.manifests, m)
	parsed, err := manifest.Parse(m.Body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Descriptor.Digest, err)
	}
	if manifest.IsIndex(m.Descriptor.MediaType) {
		for _, child := range parsed.Manifests {
			cm, err := c.StoredManifest(child.Digest)
			if err != nil {
				p.missing++
				continue
			}
			if err := p.walk(c, cm, docker); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range parsed.Blobs {
		if manifest.Foreign(b) {
			continue
		}
		if _, ok := c.HasContent(b.Digest); !ok {
			return fmt.Errorf("blob %s is not in the store (evicted? warm the image again)", b.Digest)
		}
		p.blobs = append(p.blobs, b)
	}
	if docker {
		var im ocispec.Manifest
		if err := json.Unmarshal(m.Body, &im); err != nil || im.Config.Digest == "" {
			return fmt.Errorf("manifest %s (%s) is not an image docker load can take", m.Descriptor.Digest, m.Descriptor.MediaType)
		}
		for _, l := range im.Layers {
			if manifest.Foreign(l) {
				return fmt.Errorf("layer %s is non-distributable; docker format cannot carry it", l.Digest)
			}
		}
		p.config, p.layers = im.Config, im.Layers
	}
	return nil
}

// written counts what an export wrote.
type written struct {
	files int
	bytes int64
}

// writeExport streams every planned file into s: the layout marker, each
// manifest and blob once, then index.json (and manifest.json for docker).
func writeExport(ctx context.Context, c *cache.Cache, s sink, plans []*exportImage, docker bool) (written, error) {
	var n written
	put := func(name string, body []byte) error {
		if s.has(name) {
			return nil
		}
		n.files++
		n.bytes += int64(len(body))
		return s.put(name, int64(len(body)), bytes.NewReader(body))
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := put(ocispec.ImageLayoutFile, layout); err != nil {
		return n, err
	}
	for _, p := range plans {
		for _, m := range p.manifests {
			if err := put(blobPath(m.Descriptor.Digest), m.Body); err != nil {
				return n, err
			}
		}
		for _, b := range p.blobs {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			name := blobPath(b.Digest)
			if s.has(name) {
				continue
			}
			if err := copyBlob(c, s, name, b); err != nil {
				return n, err
			}
			n.files++
			n.bytes += b.Size
		}
	}
	idx, err := json.MarshalIndent(ociIndex(plans), "", "  ")
	if err != nil {
		return n, err
	}
	if err := put(ocispec.ImageIndexFile, idx); err != nil {
		return n, err
	}
	if docker {
		mf, err := json.MarshalIndent(dockerManifest(plans), "", "  ")
		if err != nil {
			return n, err
		}
		if err := put(dockerManifestFile, mf); err != nil {
			return n, err
		}
	}
	return n, nil
}

// copyBlob streams a stored blob into the sink, re-hashing it on the way.
func copyBlob(c *cache.Cache, s sink, name string, b ocispec.Descriptor) error {
	f, err := c.OpenContent(b.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size != b.Size {
		return fmt.Errorf("blob %s is %d bytes, its manifest says %d: %w", b.Digest, f.Size, b.Size, errCorrupt)
	}
	return s.put(name, f.Size, newVerifyingReader(f.File, b.Digest))
}

// Annotations an OCI layout's index.json names its images with. ref.name
// is the OCI one; containerd (ctr import, docker 25's save) uses its own
// key for the full name, and both carry the registry so an import knows
// which upstream an image belongs to.
const (
	annotationRefName      = ocispec.AnnotationRefName // org.opencontainers.image.ref.name
	annotationImageName    = "io.containerd.image.name"
	dockerManifestFile     = "manifest.json"
	dockerManifestMaxBytes = 16 << 20
)

// ociIndex is index.json: one entry per exported tag.
func ociIndex(plans []*exportImage) ocispec.Index {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, p := range plans {
		d := ocispec.Descriptor{MediaType: p.top.MediaType, Digest: p.top.Digest, Size: p.top.Size}
		if p.tagged.Tag != "" {
			name := fullName(p.tagged.Repo, p.tagged.Tag)
			d.Annotations = map[string]string{annotationRefName: name, annotationImageName: name}
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	return idx
}
