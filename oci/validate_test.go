package oci

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestValidate is the one notion of a valid manifest, for pushes, imports
// and what an upstream sends: every kind wharf serves passes, and what is
// not a manifest of the type it came as is refused.
func TestValidate(t *testing.T) {
	a := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + repeat("a") + `","size":2}`
	l := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + repeat("b") + `","size":3}`
	child := `{"mediaType":"` + ocispec.MediaTypeImageManifest + `","digest":"sha256:` + repeat("c") + `","size":4}`
	ociImage := `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":` + a + `,"layers":[` + l + `]}`
	tests := []struct {
		name, contentType, body string
		ok                      bool
	}{
		{"oci image", ocispec.MediaTypeImageManifest, ociImage, true},
		{"oci image without mediaType in the body", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"config":` + a + `,"layers":[` + l + `]}`, true},
		{"oci index", ocispec.MediaTypeImageIndex,
			`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[` + child + `]}`, true},
		{"docker schema2", DockerManifest,
			`{"schemaVersion":2,"mediaType":"` + DockerManifest + `","config":` + a + `,"layers":[` + l + `]}`, true},
		{"docker manifest list", DockerManifestList,
			`{"schemaVersion":2,"mediaType":"` + DockerManifestList + `","manifests":[` + child + `]}`, true},
		{"oci artifact with artifactType and subject", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","artifactType":"application/vnd.example.sig",` +
				`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:` + repeat("d") + `","size":2},` +
				`"layers":[` + l + `],"subject":` + child + `}`, true},

		{"text/plain", "text/plain", "internal service", false},
		{"html", "text/html", "<!doctype html><html></html>", false},
		{"no media type", "", ociImage, false},
		{"json, not a manifest", ocispec.MediaTypeImageManifest, `{"status":"ok"}`, false},
		{"not json", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,`, false},
		{"a JSON array", ocispec.MediaTypeImageManifest, `[1,2]`, false},
		{"Content-Type and body disagree", DockerManifest, ociImage, false},
		{"index type for an image", ocispec.MediaTypeImageIndex, ociImage, false},
		{"image type for an index", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"manifests":[` + child + `]}`, false},
		{"schemaVersion 1 body", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":1,"config":` + a + `,"layers":[` + l + `]}`, false},
		{"docker schema 1", DockerSchema1, `{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:` + repeat("a") + `"}]}`, false},
		{"docker schema 1 signed", DockerSchema1Signed, `{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:` + repeat("a") + `"}]}`, false},
		{"descriptor without a size or type", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"config":{"digest":"sha256:` + repeat("a") + `"},"layers":[]}`, false},
		{"bad digest", ocispec.MediaTypeImageManifest, strings.Replace(ociImage, repeat("b"), "nope", 1), false},
	}
	for _, tt := range tests {
		_, err := ValidateManifest([]byte(tt.body), tt.contentType)
		if tt.ok && err != nil {
			t.Errorf("%s: refused: %v", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest", tt.name, err)
		}
	}
}
