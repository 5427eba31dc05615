package archive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// The docker save format. manifest.json lists the images: each names its
// config file, its tags and its layer files, in order. Docker before 25
// wrote <config hex>.json and <layer id>/layer.tar (uncompressed layers);
// since 25 it writes an OCI layout too, with both files under
// blobs/sha256/. docker load reads manifest.json only and decompresses
// whatever layers it finds, so an export can carry the registry's
// compressed blobs as they are.

// dockerImage is one entry of manifest.json.
type dockerImage struct {
	Config   string
	RepoTags []string
	Layers   []string
	// LayerSources describes foreign layers (Windows), by diff ID.
	LayerSources map[digest.Digest]dockerLayerSource `json:",omitempty"`
}

type dockerLayerSource struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
	URLs      []string      `json:"urls,omitempty"`
}

// dockerManifest is manifest.json for an export: one entry per image,
// with every tag that names it (docker load tags it with each).
func dockerManifest(plans []*exportImage) []dockerImage {
	var out []dockerImage
	at := map[digest.Digest]int{} // config digest → entry
	for _, p := range plans {
		i, ok := at[p.config.Digest]
		if !ok {
			i = len(out)
			at[p.config.Digest] = i
			img := dockerImage{Config: blobPath(p.config.Digest), RepoTags: []string{}}
			for _, l := range p.layers {
				img.Layers = append(img.Layers, blobPath(l.Digest))
			}
			out = append(out, img)
		}
		if p.tagged.Tag != "" {
			out[i].RepoTags = append(out[i].RepoTags, displayName(p.tagged.Repo, p.tagged.Tag))
		}
	}
	return out
}

// importDockerSave imports each image of manifest.json as an OCI image
// whose layers are the tarball's own files: uncompressed tars (docker
// before 27 saves them so) are stored as they are, with the media type
// that says so, rather than recompressed, so every digest can be checked
// against what the tarball itself states: the config against its file
// name (its image ID), each uncompressed layer against the config's diff
// IDs, each blobs/ file against its name. The image keeps its ID; its
// manifest is new (docker save does not keep the registry's), and is the
// same bytes for the same tarball.
func (im *importer) importDockerSave(src source) error {
	b, err := readSmall(src, dockerManifestFile, dockerManifestMaxBytes)
	if err != nil {
		return err
	}
	var imgs []dockerImage
	if err := json.Unmarshal(b, &imgs); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	for _, img := range imgs {
		if len(img.RepoTags) == 0 {
			im.skip(false)
			fmt.Fprintf(im.out, "skipped %s: saved without a tag\n", img.Config)
			continue
		}
		var refs []Name
		for _, rt := range img.RepoTags {
			// RepoTags are docker's names ("alpine:3" is Docker Hub's
			// docker.io/library/alpine:3): written out whole, as docker 25
			// and later write them in index.json, the same save imports
			// alike whichever docker made it.
			named, err := reference.ParseNormalizedNamed(rt)
			if err != nil {
				return fmt.Errorf("manifest.json: RepoTags %q: %w", rt, err)
			}
			ref, err := im.image(named.String())
			if err != nil {
				return err
			}
			if ref != nil {
				refs = append(refs, *ref)
			}
		}
		if len(refs) == 0 { // each on a registry this wharf does not mirror; warned
			im.skip(true)
			continue
		}
		body, err := im.dockerImage(src, img)
		if err != nil {
			return fmt.Errorf("%s: %w", img.RepoTags[0], err)
		}
		for _, ref := range refs {
			if err := im.tag(ref, ocispec.MediaTypeImageManifest, "", body); err != nil {
				return fmt.Errorf("%s: %w", ref, err)
			}
		}
	}
	return nil
}

// dockerImage imports one image's config and layers and returns the OCI
// manifest describing them.
func (im *importer) dockerImage(src source, img dockerImage) ([]byte, error) {
	cfgBody, err := readSmall(src, img.Config, oci.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	// The config is named by its digest (the image ID), or by nothing.
	cfgDigest, err := oci.ManifestDigest(cfgBody, digestOfName(img.Config))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", img.Config, cache.BadContent(err))
	}
	var cf struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfgBody, &cf); err != nil {
		return nil, fmt.Errorf("config %s: %w", img.Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(img.Layers) {
		return nil, fmt.Errorf("config lists %d layers, manifest.json %d", len(cf.RootFS.DiffIDs), len(img.Layers))
	}
	if err := im.putBlob(cfgDigest, int64(len(cfgBody)), bytes.NewReader(cfgBody)); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgBody))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for i, name := range img.Layers {
		diffID := cf.RootFS.DiffIDs[i]
		if fl, ok := img.LayerSources[diffID]; ok {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: fl.MediaType, Digest: fl.Digest, Size: fl.Size, URLs: fl.URLs})
			continue
		}
		desc, err := im.dockerLayer(src, name, diffID)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, desc)
	}
	return json.Marshal(m)
}

// dockerLayer imports one layer file: by the digest its blobs/ name
// states, or, for an uncompressed one, by its diff ID.
func (im *importer) dockerLayer(src source, name string, diffID digest.Digest) (ocispec.Descriptor, error) {
	rc, size, err := src.open(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	magic := make([]byte, 4)
	n, _ := io.ReadFull(rc, magic)
	rc.Close()
	mt := ocispec.MediaTypeImageLayer
	switch {
	case n >= 2 && bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		mt = ocispec.MediaTypeImageLayerGzip
	case n == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		mt = ocispec.MediaTypeImageLayerZstd
	}
	d := digestOfName(name)
	switch {
	case d == "" && mt != ocispec.MediaTypeImageLayer:
		return ocispec.Descriptor{}, fmt.Errorf("layer %s is compressed and its name gives no digest to check it by", name)
	case d == "":
		d = diffID
	case mt == ocispec.MediaTypeImageLayer && d != diffID:
		return ocispec.Descriptor{}, fmt.Errorf("layer %s is uncompressed, so its digest should be the config's diff ID %s: %w", name, diffID, cache.ErrDigestInvalid)
	}
	if err := im.blob(src, name, d, size); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// digestOfName reads the digest a docker save file name states:
// blobs/<alg>/<hex> (docker 25 and later) or <hex>.json (an image config
// before 25, named by its ID). Other names state none ("" is returned).
func digestOfName(name string) digest.Digest {
	if rest, ok := strings.CutPrefix(name, "blobs/"); ok {
		alg, enc, _ := strings.Cut(rest, "/")
		if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc); d.Validate() == nil {
			return d
		}
		return ""
	}
	if hex, ok := strings.CutSuffix(name, ".json"); ok && !strings.Contains(hex, "/") {
		if d := digest.NewDigestFromEncoded(digest.SHA256, hex); d.Validate() == nil {
			return d
		}
	}
	return ""
}
