package e2e

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPullEveryKindThroughWharf pulls schema2 and OCI images, a
// multi-platform index and images sharing layers through wharf with a real
// client, cold and then warm, by tag and by digest, and checks every byte
// against its digest and against what the upstream holds.
func TestPullEveryKindThroughWharf(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)

	schema2 := upstreamtest.RandomImage(t, 3, 64<<10, upstreamtest.DockerManifest)
	oci := upstreamtest.RandomImage(t, 2, 64<<10, upstreamtest.OCIManifest)
	ociIndex := upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex)
	dockerList := upstreamtest.RandomIndex(t, 2, upstreamtest.DockerManifestList)
	// An image that shares its base layers with schema2.
	extra := upstreamtest.RandomImage(t, 1, 32<<10, upstreamtest.DockerManifest)
	extraLayers, _ := extra.Layers()
	sharing, err := mutate.AppendLayers(schema2, extraLayers...)
	if err != nil {
		t.Fatal(err)
	}

	images := map[string]string{ // repo:tag on the mirror → pushed digest
		"team/schema2:v1": upstreamtest.Push(t, reg, "team/schema2:v1", schema2).Digest.String(),
		"team/oci:v1":     upstreamtest.Push(t, reg, "team/oci:v1", oci).Digest.String(),
		"team/sharing:v1": upstreamtest.Push(t, reg, "team/sharing:v1", sharing).Digest.String(),
	}
	indexes := map[string]string{
		"multi/oci:v1":    upstreamtest.PushIndex(t, reg, "multi/oci:v1", ociIndex).Digest.String(),
		"multi/docker:v1": upstreamtest.PushIndex(t, reg, "multi/docker:v1", dockerList).Digest.String(),
	}

	m := startMirror(t, faulty.URL, mirrorOpts{})
	opts := client(t)
	for _, pass := range []string{"cold", "warm"} {
		faulty.ResetCounts()
		for ref, want := range images {
			for _, r := range []string{ref, repoOf(ref) + "@" + want} {
				img, err := remote.Image(m.ref(t, r), opts...)
				if err != nil {
					t.Fatalf("%s pull %s: %v", pass, r, err)
				}
				if err := validate.Image(img); err != nil {
					t.Fatalf("%s pull %s: invalid image: %v", pass, r, err)
				}
				if d, _ := img.Digest(); d.String() != want {
					t.Errorf("%s pull %s: digest %s, upstream has %s", pass, r, d, want)
				}
			}
		}
		for ref, want := range indexes {
			idx, err := remote.Index(m.ref(t, ref), opts...)
			if err != nil {
				t.Fatalf("%s pull %s: %v", pass, ref, err)
			}
			if err := validate.Index(idx); err != nil {
				t.Fatalf("%s pull %s: invalid index: %v", pass, ref, err)
			}
			if d, _ := idx.Digest(); d.String() != want {
				t.Errorf("%s pull %s: index digest %s, upstream has %s (must be kept byte for byte)", pass, ref, d, want)
			}
		}
		if pass == "warm" {
			if n := faulty.BlobGets(); n != 0 {
				t.Errorf("warm pull fetched %d blobs from the upstream, want 0", n)
			}
			if n := faulty.Count("GET", "/manifests/"); n != 0 {
				t.Errorf("warm pull fetched %d manifests from the upstream, want 0", n)
			}
		}
	}
}

// TestIndexChildrenFetchedOnDemand: pulling an index by tag fetches the
// index only; a platform's manifest is fetched when a client asks for it.
func TestIndexChildrenFetchedOnDemand(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	idx := upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex)
	upstreamtest.PushIndex(t, reg, "multi/app:v1", idx)
	m := startMirror(t, faulty.URL, mirrorOpts{})

	resp := get(t, m.URL+"/v2/multi/app/manifests/v1", "Accept", string(upstreamtest.OCIIndex))
	if resp.StatusCode != 200 {
		t.Fatalf("index: %d", resp.StatusCode)
	}
	if n := faulty.Count("GET", "/manifests/"); n != 1 {
		t.Fatalf("index pull made %d manifest GETs upstream, want 1 (children on demand)", n)
	}
	im, _ := idx.IndexManifest()
	child := im.Manifests[1].Digest.String()
	resp = get(t, m.URL+"/v2/multi/app/manifests/"+child, "Accept", string(upstreamtest.OCIManifest))
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != child {
		t.Fatalf("child: %d %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	if n := faulty.Count("GET", "/manifests/"); n != 2 {
		t.Errorf("after one child: %d manifest GETs upstream, want 2", n)
	}
}

func repoOf(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == ':' {
			return ref[:i]
		}
	}
	return ref
}
