package oci

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fuzzSeeds are a manifest of every kind Parse reads, as registries write
// them, plus the traps of TestParse.
func fuzzSeeds() []string {
	a, b, c := "sha256:"+repeat("a"), "sha256:"+repeat("b"), "sha256:"+repeat("c")
	desc := func(mt, d string, size int) string {
		out, _ := json.Marshal(ocispec.Descriptor{MediaType: mt, Digest: digest.Digest(d), Size: int64(size)})
		return string(out)
	}
	return []string{
		`{"schemaVersion":2,"mediaType":"` + DockerManifest + `","config":` + desc("application/vnd.docker.container.image.v1+json", a, 1469) +
			`,"layers":[` + desc("application/vnd.docker.image.rootfs.diff.tar.gzip", b, 3623807) + `]}`,
		`{"schemaVersion":2,"mediaType":"` + DockerManifestList + `","manifests":[{"mediaType":"` + DockerManifest + `","digest":"` + a +
			`","size":528,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":` + desc(ocispec.MediaTypeImageConfig, a, 2) +
			`,"layers":[` + desc(ocispec.MediaTypeImageLayerGzip, b, 3) + `,` + desc(DockerForeignLayer, c, 4) + `],"annotations":{"k":"v"}}`,
		`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[` + desc(ocispec.MediaTypeImageManifest, a, 5) + `]}`,
		`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","artifactType":"application/vnd.example.sbom","config":` +
			desc(ocispec.DescriptorEmptyJSON.MediaType, ocispec.DescriptorEmptyJSON.Digest.String(), 2) + `,"layers":[` +
			desc("application/json", b, 7) + `],"subject":` + desc(ocispec.MediaTypeImageManifest, c, 9) + `}`,
		`{"schemaVersion":1,"name":"library/busybox","tag":"latest","fsLayers":[{"blobSum":"` + a + `"},{"blobSum":"` + b + `"}]}`,
		`{"schemaVersion":2,"layers":[{"digest":"sha256:nope"}]}`,
		`{"schemaVersion":2,"config":{"digest":"` + a + `","size":-1}}`,
		`{"schemaVersion":`,
		`null`,
		`[]`,
	}
}

// FuzzParseManifest: Parse never panics, refuses with ErrInvalidManifest only, and every
// reference of what it accepts is a valid digest (the store builds paths
// from them). Parsing is a function of the bytes: twice gives the same.
func FuzzParseManifest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseManifest(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %v is not ErrInvalidManifest", err)
			}
			return
		}
		for _, d := range p.Refs() {
			if d.Validate() != nil {
				t.Fatalf("accepted reference %q is not a digest", d)
			}
		}
		if p.Subject != nil && p.Subject.Digest.Validate() != nil {
			t.Fatalf("accepted subject %q is not a digest", p.Subject.Digest)
		}
		again, err := ParseManifest(body)
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("second parse differs: %+v, %v", again, err)
		}
	})
}

// FuzzValidateManifest: a pushed manifest Validate accepts has the kind's required
// fields and complete descriptors, agrees with its Content-Type, and
// survives a round trip: the manifest rebuilt from what Validate read
// validates again to the same references.
func FuzzValidateManifest(f *testing.F) {
	types := []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, DockerManifest, DockerManifestList, DockerSchema1}
	for i, s := range fuzzSeeds() {
		f.Add([]byte(s), types[i%len(types)])
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		p, err := ValidateManifest(body, contentType)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %v is not ErrInvalidManifest", err)
			}
			return
		}
		if !Pushable(contentType) || p.MediaType != contentType {
			t.Fatalf("accepted Content-Type %q as %q", contentType, p.MediaType)
		}
		descs := append(append([]ocispec.Descriptor{}, p.Blobs...), p.Manifests...)
		for _, d := range descs {
			if d.Digest.Validate() != nil || d.Size < 0 || d.MediaType == "" {
				t.Fatalf("accepted an incomplete descriptor %+v", d)
			}
		}
		var rebuilt []byte
		if IsIndex(contentType) {
			idx := map[string]any{"schemaVersion": 2, "mediaType": contentType, "manifests": nonNil(p.Manifests)}
			if len(p.Blobs) > 0 { // an index that also lists blobs keeps them
				idx["blobs"] = p.Blobs
			}
			if p.Subject != nil {
				idx["subject"] = p.Subject
			}
			rebuilt, _ = json.Marshal(idx)
		} else {
			if len(p.Blobs) == 0 {
				t.Fatal("accepted an image manifest without a config")
			}
			m := ocispec.Manifest{MediaType: contentType, Config: p.Blobs[0], Layers: nonNil(p.Blobs[1:]), Subject: p.Subject}
			m.SchemaVersion = 2
			rebuilt, _ = json.Marshal(m)
		}
		again, err := ValidateManifest(rebuilt, contentType)
		if err != nil {
			t.Fatalf("rebuilt manifest refused: %v\n%s", err, rebuilt)
		}
		if !reflect.DeepEqual(refsOf(again.Parsed), refsOf(p.Parsed)) {
			t.Fatalf("round trip changed the references: %v, want %v", again.Refs(), p.Refs())
		}
	})
}

func nonNil(ds []ocispec.Descriptor) []ocispec.Descriptor {
	if ds == nil {
		return []ocispec.Descriptor{}
	}
	return ds
}

// refsOf is the references in a comparable form (nil and empty alike).
func refsOf(p Parsed) []digest.Digest {
	if refs := p.Refs(); len(refs) > 0 {
		return refs
	}
	return nil
}
