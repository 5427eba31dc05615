package oci

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrInvalidManifest: the bytes are not a manifest this package understands.
var ErrInvalidManifest = errors.New("manifest: invalid")

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
	Config    *ocispec.Descriptor  // the config, also first in Blobs; nil for schema 1 and indexes
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

// ParseManifest reads a manifest's references. Every referenced digest must be
// valid.
func ParseManifest(body []byte) (Parsed, error) {
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Parsed{}, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	p := Parsed{MediaType: w.MediaType, Manifests: w.Manifests, Subject: w.Subject}
	if w.Config != nil {
		p.Config = w.Config
		p.Blobs = append(p.Blobs, *w.Config)
	}
	p.Blobs = append(p.Blobs, w.Layers...)
	p.Blobs = append(p.Blobs, w.Blobs...)
	for _, l := range w.FSLayers {
		p.Blobs = append(p.Blobs, ocispec.Descriptor{Digest: l.BlobSum, Size: -1})
	}
	for _, d := range append(append([]ocispec.Descriptor{}, p.Blobs...), p.Manifests...) {
		if err := d.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("%w: reference %q: %v", ErrInvalidManifest, d.Digest, err)
		}
	}
	if p.Subject != nil {
		if err := p.Subject.Digest.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("%w: subject %q: %v", ErrInvalidManifest, p.Subject.Digest, err)
		}
	}
	return p, nil
}
