package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
)

// writeExport streams every planned file into s: the layout marker, each
// manifest and blob once, then index.json (and manifest.json for docker).
func writeExport(ctx context.Context, st ExportStore, s sink, plans []*exportImage, docker bool) (Exported, error) {
	var n Exported
	put := func(name string, body []byte) error {
		if s.has(name) {
			return nil
		}
		n.Files++
		n.Bytes += int64(len(body))
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
			if err := copyBlob(st, s, name, b); err != nil {
				return n, err
			}
			n.Files++
			n.Bytes += b.Size
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
func copyBlob(st ExportStore, s sink, name string, b ocispec.Descriptor) error {
	f, err := st.OpenContent(b.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size != b.Size {
		return fmt.Errorf("blob %s is %d bytes, its manifest says %d: %w", b.Digest, f.Size, b.Size, errCorrupt)
	}
	r, err := oci.NewVerifyingReader(f.File, b.Digest, f.Size)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	return oci.WrapMismatch(s.put(name, f.Size, r), errCorrupt, errCorrupt)
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
			name := p.tagged.String() // with its registry, so an import on the far side knows it whole
			d.Annotations = map[string]string{annotationRefName: name, annotationImageName: name}
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	return idx
}
