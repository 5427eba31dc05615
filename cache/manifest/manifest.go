package manifest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrInvalid: the bytes are not a manifest this package understands.
var ErrInvalid = errors.New("manifest: invalid")

// Docker media types (github.com/moby/docker-image-spec defines them; the
// strings are the wire format and never change).
const (
	DockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	DockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Served lists every manifest type wharf serves, indexes first: the
// Accept values of a request that wants whatever the registry holds under
// a reference (a registry may answer 404 for a type not accepted).
var Served = []string{
	ocispec.MediaTypeImageIndex, DockerManifestList,
	ocispec.MediaTypeImageManifest, DockerManifest,
}

// IsIndex reports whether mediaType names a list of manifests.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == DockerManifestList
}

// Known reports whether mediaType is a manifest type wharf understands.
func Known(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, DockerManifest,
		DockerManifestList, DockerSchema1, DockerSchema1Signed:
		return true
	}
	return false
}

// wire is the union of the fields every kind of manifest uses to point at
// content.
type wire struct {
	SchemaVersion int                               `json:"schemaVersion"`
	MediaType     string                            `json:"mediaType"`
	Config        *ocispec.Descriptor               `json:"config"`
	Layers        []ocispec.Descriptor              `json:"layers"`
	Manifests     []ocispec.Descriptor              `json:"manifests"`
	Blobs         []ocispec.Descriptor              `json:"blobs"`
	Subject       *ocispec.Descriptor               `json:"subject"`
	FSLayers      []struct{ BlobSum digest.Digest } `json:"fsLayers"`
}

// Parsed is what a manifest says about its content.
type Parsed struct {
	MediaType string               // from the body, when it says
	Blobs     []ocispec.Descriptor // config and layers (or an artifact's blobs)
	Manifests []ocispec.Descriptor // children of an index
	Subject   *ocispec.Descriptor  // OCI 1.1 referrers subject
}

// Refs lists every digest the manifest references, children included
// (the subject is not a dependency: it may be deleted first).
func (p Parsed) Refs() []digest.Digest {
	out := make([]digest.Digest, 0, len(p.Blobs)+len(p.Manifests))
	for _, d := range p.Blobs {
		out = append(out, d.Digest)
	}
	for _, d := range p.Manifests {
		out = append(out, d.Digest)
	}
	return out
}

// Parse reads a manifest's references. Every referenced digest must be
// valid.
func Parse(body []byte) (Parsed, error) {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Parsed{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p := Parsed{MediaType: w.MediaType, Manifests: w.Manifests, Subject: w.Subject}
	if w.Config != nil {
		p.Blobs = append(p.Blobs, *w.Config)
	}
	p.Blobs = append(p.Blobs, w.Layers...)
	p.Blobs = append(p.Blobs, w.Blobs...)
	for _, l := range w.FSLayers {
		p.Blobs = append(p.Blobs, ocispec.Descriptor{Digest: l.BlobSum, Size: -1})
	}
	for _, d := range append(append([]ocispec.Descriptor{}, p.Blobs...), p.Manifests...) {
		if err := d.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("%w: reference %q: %v", ErrInvalid, d.Digest, err)
		}
	}
	if p.Subject != nil {
		if err := p.Subject.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("%w: subject %q: %v", ErrInvalid, p.Subject.Digest, err)
		}
	}
	return p, nil
}
