package oci

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestMediaTypes pins what each manifest type is to wharf: served (in
// ServedManifests), stored (Pushable), an index, merely known (schema 1).
func TestMediaTypes(t *testing.T) {
	cases := []struct {
		mediaType                      string
		served, pushable, index, known bool
	}{
		{ocispec.MediaTypeImageManifest, true, true, false, true},
		{ocispec.MediaTypeImageIndex, true, true, true, true},
		{DockerManifest, true, true, false, true},
		{DockerManifestList, true, true, true, true},
		{DockerSchema1, false, false, false, true},
		{DockerSchema1Signed, false, false, false, true},
		{ocispec.MediaTypeImageConfig, false, false, false, false},
		{"application/json", false, false, false, false},
		{"", false, false, false, false},
	}
	for _, tc := range cases {
		served := false
		for _, s := range ServedManifests {
			served = served || s == tc.mediaType
		}
		if served != tc.served || Pushable(tc.mediaType) != tc.pushable || IsIndex(tc.mediaType) != tc.index || KnownManifest(tc.mediaType) != tc.known {
			t.Errorf("%q: served %v pushable %v index %v known %v, want %v %v %v %v", tc.mediaType, served,
				Pushable(tc.mediaType), IsIndex(tc.mediaType), KnownManifest(tc.mediaType), tc.served, tc.pushable, tc.index, tc.known)
		}
	}
	if !IsIndex(ServedManifests[0]) || !IsIndex(ServedManifests[1]) {
		t.Errorf("ServedManifests %v: indexes must come first", ServedManifests)
	}
}

func TestForeign(t *testing.T) {
	for mt, want := range map[string]bool{
		DockerForeignLayer: true,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
		ocispec.MediaTypeImageLayerGzip:                                false,
	} {
		if got := Foreign(ocispec.Descriptor{MediaType: mt}); got != want {
			t.Errorf("Foreign(%q) = %v, want %v", mt, got, want)
		}
	}
}

// TestMaxManifestSize pins the limit to distribution's 4 MiB: a registry
// that stores what another refuses breaks a later push or mirror of it
// (the edges, limit and limit+1, are tested where bodies are read:
// upstream, push, import).
func TestMaxManifestSize(t *testing.T) {
	if MaxManifestSize != 4<<20 {
		t.Fatalf("MaxManifestSize = %d, want 4 MiB", MaxManifestSize)
	}
}
