package oci

import (
	"bytes"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pushed is what a registry needs to know of a manifest a client pushes:
// its references, and what the referrers API reports about it.
type Pushed struct {
	Parsed
	MediaType    string // the Content-Type, checked against the body
	ArtifactType string // artifactType, else the config's media type (OCI 1.1)
	Annotations  map[string]string
}

// ValidateManifest checks a manifest a client pushes, an import brings or an
// upstream sends: valid JSON, schemaVersion 2, a Content-Type that wharf
// accepts and that agrees with the body's own mediaType, the fields its
// kind requires, and valid descriptors.
func ValidateManifest(body []byte, contentType string) (Pushed, error) {
	if !Pushable(contentType) {
		return Pushed{}, fmt.Errorf("%w: media type %q is not an image manifest or index wharf accepts", ErrInvalidManifest, contentType)
	}
	var extra struct {
		SchemaVersion *int              `json:"schemaVersion"`
		ArtifactType  string            `json:"artifactType"`
		Annotations   map[string]string `json:"annotations"`
		Config        json.RawMessage   `json:"config"`
		Manifests     json.RawMessage   `json:"manifests"`
	}
	if !json.Valid(body) || json.Unmarshal(body, &extra) != nil {
		return Pushed{}, fmt.Errorf("%w: not a JSON object", ErrInvalidManifest)
	}
	p, err := ParseManifest(body)
	if err != nil {
		return Pushed{}, err
	}
	if extra.SchemaVersion == nil || *extra.SchemaVersion != 2 {
		return Pushed{}, fmt.Errorf("%w: schemaVersion must be 2", ErrInvalidManifest)
	}
	if p.MediaType != "" && p.MediaType != contentType {
		return Pushed{}, fmt.Errorf("%w: Content-Type %q but the body says %q", ErrInvalidManifest, contentType, p.MediaType)
	}
	out := Pushed{Parsed: p, MediaType: contentType, ArtifactType: extra.ArtifactType, Annotations: extra.Annotations}
	isNull := func(raw json.RawMessage) bool { return len(raw) == 0 || bytes.Equal(raw, []byte("null")) }
	if IsIndex(contentType) {
		if !isNull(extra.Config) {
			return Pushed{}, fmt.Errorf("%w: an index has no config", ErrInvalidManifest)
		}
	} else {
		if isNull(extra.Config) || len(p.Blobs) == 0 {
			return Pushed{}, fmt.Errorf("%w: an image manifest needs a config", ErrInvalidManifest)
		}
		if !isNull(extra.Manifests) {
			return Pushed{}, fmt.Errorf("%w: an image manifest has no manifests list", ErrInvalidManifest)
		}
		if out.ArtifactType == "" {
			out.ArtifactType = p.Blobs[0].MediaType
		}
	}
	for _, d := range append(append([]ocispec.Descriptor{}, p.Blobs...), p.Manifests...) {
		if d.Size < 0 || d.MediaType == "" {
			return Pushed{}, fmt.Errorf("%w: descriptor %s needs a media type and a size", ErrInvalidManifest, d.Digest)
		}
	}
	return out, nil
}
