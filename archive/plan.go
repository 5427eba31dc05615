package archive

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
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
	return p.tagged.String()
}

// planExport walks t's manifests in the store. In docker format an index
// is narrowed to its manifest for plat, since docker load takes one
// image per name.
func planExport(st ExportStore, t cache.Tagged, docker bool, plat ocispec.Platform) (*exportImage, error) {
	m, err := st.StoredManifest(t.Descriptor.Digest)
	if err != nil {
		return nil, err
	}
	p := &exportImage{tagged: t, top: m.Descriptor}
	if docker && oci.IsIndex(m.Descriptor.MediaType) {
		if m, err = pickPlatform(st, m, plat); err != nil {
			return nil, err
		}
		p.top = m.Descriptor
	}
	if err := p.walk(st, m, docker); err != nil {
		return nil, err
	}
	return p, nil
}

func pickPlatform(st ExportStore, idx *cache.Manifest, plat ocispec.Platform) (*cache.Manifest, error) {
	parsed, err := oci.ParseManifest(idx.Body)
	if err != nil {
		return nil, err
	}
	for _, child := range parsed.Manifests {
		if !oci.MatchPlatform(child.Platform, []ocispec.Platform{plat}) {
			continue
		}
		if m, err := st.StoredManifest(child.Digest); err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no %s image of it in the store (see --platform)", oci.FormatPlatforms([]ocispec.Platform{plat}))
}

func (p *exportImage) walk(st ExportStore, m *cache.Manifest, docker bool) error {
	p.manifests = append(p.manifests, m)
	parsed, err := oci.ParseManifest(m.Body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Descriptor.Digest, err)
	}
	if oci.IsIndex(m.Descriptor.MediaType) {
		for _, child := range parsed.Manifests {
			cm, err := st.StoredManifest(child.Digest)
			if err != nil {
				p.missing++
				continue
			}
			if err := p.walk(st, cm, docker); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range parsed.Blobs {
		if oci.Foreign(b) {
			continue
		}
		if _, ok := st.HasContent(b.Digest); !ok {
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
			if oci.Foreign(l) {
				return fmt.Errorf("layer %s is non-distributable; docker format cannot carry it", l.Digest)
			}
		}
		p.config, p.layers = im.Config, im.Layers
	}
	return nil
}
