package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// importLayout imports every image index.json lists, bottom-up: blobs,
// then the manifests that reference them, then the tag, so that no tag
// ever points at something incomplete. An index whose children the layout
// lacks (an export of some platforms) is kept with the ones it has.
func (im *importer) importLayout(src source) error {
	if b, err := readSmall(src, ocispec.ImageLayoutFile, 1<<10); err == nil {
		var l ocispec.ImageLayout
		if json.Unmarshal(b, &l) != nil || !strings.HasPrefix(l.Version, "1.") {
			return fmt.Errorf("oci-layout: unsupported version %q", l.Version)
		}
	}
	b, err := readSmall(src, ocispec.ImageIndexFile, dockerManifestMaxBytes)
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	for _, d := range idx.Manifests {
		ref, named, err := im.layoutName(d)
		if err != nil {
			return err
		}
		if !named {
			im.skip(false)
			fmt.Fprintf(im.out, "skipped %s: index.json gives it no name (see --repo)\n", d.Digest)
			continue
		}
		if ref == nil { // a registry this wharf does not mirror; warned
			im.skip(true)
			continue
		}
		body, mt, err := im.layoutManifest(src, ref.Repo, d, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		if err := im.tag(*ref, mt, d.Digest, body); err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
	}
	return nil
}

// layoutName reads the name index.json gives an image: containerd's full
// name, or ref.name when it is a name (wharf export writes full names;
// skopeo and buildkit write a bare tag, which --repo completes). named is
// false when it has none; the image is nil when it names a registry this
// wharf does not mirror (see importer.image).
func (im *importer) layoutName(d ocispec.Descriptor) (img *Name, named bool, err error) {
	if n := d.Annotations[annotationImageName]; n != "" {
		img, err := im.image(n)
		return img, true, err
	}
	n := d.Annotations[annotationRefName]
	switch {
	case n == "":
		return nil, false, nil
	case strings.ContainsAny(n, "/:"):
		img, err := im.image(n)
		return img, true, err
	case im.repo != "":
		img, err := im.image(im.repo + ":" + n)
		return img, true, err
	}
	return nil, false, nil
}

// layoutManifest imports the manifest d and everything below it, and
// returns its bytes and media type for the caller to store (with a tag).
// Children are stored here, untagged.
func (im *importer) layoutManifest(src source, repo cache.Repo, d ocispec.Descriptor, depth int) ([]byte, string, error) {
	if depth > 4 {
		return nil, "", fmt.Errorf("manifest %s: indexes nested too deep", d.Digest)
	}
	if err := d.Digest.Validate(); err != nil {
		return nil, "", fmt.Errorf("index.json: %q: %w", d.Digest, err)
	}
	body, err := readSmall(src, blobPath(d.Digest), oci.MaxManifestSize)
	if err != nil {
		return nil, "", err
	}
	if err := oci.VerifyBytes(body, d.Digest); err != nil {
		return nil, "", fmt.Errorf("manifest: %w", cache.BadContent(err))
	}
	p, err := oci.ParseManifest(body)
	if err != nil {
		return nil, "", err
	}
	mt := d.MediaType
	if mt == "" {
		mt = p.MediaType
	}
	if oci.IsIndex(mt) {
		for _, child := range p.Manifests {
			cb, cmt, err := im.layoutManifest(src, repo, child, depth+1)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a platform the export left out
			}
			if err != nil {
				return nil, "", err
			}
			if err := im.putChild(repo, cmt, child.Digest, cb); err != nil {
				return nil, "", err
			}
		}
		return body, mt, nil
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		if err := im.blob(src, blobPath(b.Digest), b.Digest, b.Size); err != nil {
			return nil, "", err
		}
	}
	return body, mt, nil
}
