package bench

import (
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
)

func TestParseManifestKinds(t *testing.T) {
	tests := []struct {
		body, contentType, want string
	}{
		{`{"manifests":[]}`, ocispec.MediaTypeImageIndex, "index"},
		{`{}`, oci.DockerManifestList, "index"},
		{`{"config":{}}`, oci.DockerManifest + "; charset=utf-8", "image"},
		{`{"mediaType":"` + ocispec.MediaTypeImageManifest + `"}`, "application/json", "image"},
		{`{"manifests":[{"digest":"sha256:x"}]}`, "", "index"},
		{`{"config":{"digest":"sha256:x"}}`, "text/plain", "image"},
		{`{"schemaVersion":1}`, "application/vnd.docker.distribution.manifest.v1+prettyjws", ""},
		{`not json`, ocispec.MediaTypeImageManifest, ""},
	}
	for _, tt := range tests {
		m, err := parseManifest([]byte(tt.body), tt.contentType)
		if tt.want == "" {
			if !errors.Is(err, ErrManifest) {
				t.Errorf("%s (%s): err %v, want ErrManifest", tt.body, tt.contentType, err)
			}
			continue
		}
		if err != nil || m.kind != tt.want {
			t.Errorf("%s (%s): got %v, %v; want %s", tt.body, tt.contentType, m, err, tt.want)
		}
	}
}

func TestPlatformPick(t *testing.T) {
	entry := func(os, arch, variant, d string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.Digest("sha256:" + d), Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	idx := &manifest{Manifests: []ocispec.Descriptor{
		entry("unknown", "unknown", "", "att"),
		entry("linux", "arm", "v7", "armv7"),
		entry("linux", "arm64", "", "arm64"),
		entry("linux", "amd64", "", "amd64"),
		entry("windows", "amd64", "", "win"),
	}}
	tests := []struct{ platform, want string }{
		{"linux/amd64", "amd64"},
		{"linux/arm64", "arm64"},
		{"linux/arm64/v8", "arm64"},
		{"linux/arm/v7", "armv7"},
		{"linux/arm", "armv7"},
		{"windows/amd64", "win"},
		{"linux/arm/v6", ""},
		{"linux/s390x", ""},
	}
	for _, tt := range tests {
		p, err := parsePlatform(tt.platform)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.pick(idx)
		if tt.want == "" {
			if !errors.Is(err, ErrPlatform) {
				t.Errorf("%s: err %v, want ErrPlatform", tt.platform, err)
			}
			continue
		}
		if err != nil || d.Digest.Encoded() != tt.want {
			t.Errorf("%s: got %s, %v; want %s", tt.platform, d.Digest, err, tt.want)
		}
	}
	for _, bad := range []string{"linux", "/amd64", "linux/", "a/b/c/d"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
