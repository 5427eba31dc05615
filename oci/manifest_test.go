package oci

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	a := "sha256:" + repeat("a")
	b := "sha256:" + repeat("b")
	c := "sha256:" + repeat("c")
	cases := []struct {
		name  string
		body  string
		refs  int
		index bool
		err   bool
	}{
		{"schema2", `{"schemaVersion":2,"mediaType":"` + DockerManifest + `","config":{"digest":"` + a + `","size":1},"layers":[{"digest":"` + b + `","size":2}]}`, 2, false, false},
		{"oci index", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"` + a + `"},{"digest":"` + b + `"}]}`, 2, true, false},
		{"artifact with subject", `{"schemaVersion":2,"config":{"digest":"` + a + `"},"layers":[],"subject":{"digest":"` + c + `"}}`, 1, false, false},
		{"schema1", `{"schemaVersion":1,"fsLayers":[{"blobSum":"` + a + `"},{"blobSum":"` + b + `"}]}`, 2, false, false},
		{"bad digest", `{"schemaVersion":2,"layers":[{"digest":"sha256:nope"}]}`, 0, false, true},
		{"not json", `{"schemaVersion":`, 0, false, true},
	}
	for _, tc := range cases {
		p, err := ParseManifest([]byte(tc.body))
		if tc.err {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Errorf("%s: err %v, want ErrInvalidManifest", tc.name, err)
			}
			continue
		}
		if err != nil || len(p.Refs()) != tc.refs || IsIndex(p.MediaType) != tc.index {
			t.Errorf("%s: %+v refs %d, err %v", tc.name, p, len(p.Refs()), err)
		}
		if tc.name == "artifact with subject" && (p.Subject == nil || p.Subject.Digest.String() != c) {
			t.Errorf("subject not read: %+v", p.Subject)
		}
	}
}

func repeat(s string) string {
	out := ""
	for i := 0; i < 64; i++ {
		out += s
	}
	return out
}
