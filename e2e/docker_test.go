package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestDockerPullThroughWharf pulls runnable images through wharf with the
// real docker engine, the client wharf exists for: cold (each blob fetched
// upstream once), warm after `docker rmi` (nothing fetched upstream), by
// the one-component name Docker Hub reads as library/…, an image sharing
// layers (only its new blobs fetched), and by digest; then runs both
// images, whose program hashes the files of every layer.
//
// The engine runs on this host, so it reaches wharf on 127.0.0.1, which
// it treats as an insecure (plain HTTP) registry.
func TestDockerPullThroughWharf(t *testing.T) {
	dk := needDocker(t)

	probe := probeLayer(t)
	shared, only1, only2 := dockerRandomLayer(t), dockerRandomLayer(t), dockerRandomLayer(t)
	first := runnableImage(t, shared, only1, probe)
	second := runnableImage(t, shared, probe, only2)
	id1, id2 := imageID(t, first), imageID(t, second)

	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	name := fmt.Sprintf("wharftest-%08x", rand.Uint32())
	repo := "library/" + name
	d1 := upstreamtest.Push(t, reg, repo+":v1", first).Digest.String()
	d2 := upstreamtest.Push(t, reg, repo+":v2", second).Digest.String()
	m := startMirror(t, faulty.URL, mirrorOpts{officialLibrary: true})
	at := m.Host + "/"

	t.Run("cold", func(t *testing.T) {
		faulty.ResetCounts()
		dk.pull(t, at+repo+":v1", d1, id1)
		wantUpstreamBlobGets(t, faulty, digests(t, first, shared, only1, probe)...)
		if n := faulty.Count("GET", "/manifests/"); n != 1 {
			t.Errorf("upstream saw %d manifest GETs, want 1", n)
		}
	})

	t.Run("warm", func(t *testing.T) {
		dk.rmi(t, id1)
		faulty.ResetCounts()
		dk.pull(t, at+repo+":v1", d1, id1)
		wantUpstreamBlobGets(t, faulty)
		if n := faulty.Count("GET", "/manifests/"); n != 0 {
			t.Errorf("upstream saw %d manifest GETs, want 0 (tag fresh in the cache)", n)
		}
	})

	t.Run("one-component name is library", func(t *testing.T) {
		dk.rmi(t, id1)
		faulty.ResetCounts()
		dk.pull(t, at+name+":v1", d1, id1)
		wantUpstreamBlobGets(t, faulty)
		t.Logf("upstream saw %d manifest GETs for %s:v1", faulty.Count("GET", "/manifests/"), name)
	})

	t.Run("shared layers", func(t *testing.T) {
		dk.rmi(t, id1) // so the engine asks wharf for the shared layers too
		faulty.ResetCounts()
		dk.pull(t, at+repo+":v2", d2, id2)
		wantUpstreamBlobGets(t, faulty, digests(t, second, only2)...)
		dockerRunProbe(t, dk, at+repo+":v2", second)
	})

	t.Run("by digest", func(t *testing.T) {
		dk.rmi(t, id2)
		faulty.ResetCounts()
		dk.pull(t, at+repo+"@"+d1, d1, id1)
		wantUpstreamBlobGets(t, faulty)
		if n := faulty.Count("GET", "/manifests/"); n != 0 {
			t.Errorf("upstream saw %d manifest GETs, want 0 (pulled by tag before)", n)
		}
		dockerRunProbe(t, dk, at+repo+"@"+d1, first)
	})
}

// dockerRandomLayer is a Docker layer holding one file of 384 KiB of
// random bytes.
func dockerRandomLayer(t *testing.T) v1.Layer {
	t.Helper()
	l, err := random.Layer(384<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// digests returns the digests of img's config and of layers.
func digests(t *testing.T, img v1.Image, layers ...v1.Layer) []string {
	t.Helper()
	ds := []string{imageID(t, img)}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	return ds
}

// wantUpstreamBlobGets checks the upstream saw one GET of each of blobs
// and of no other blob.
func wantUpstreamBlobGets(t *testing.T, f *upstreamtest.Faulty, blobs ...string) {
	t.Helper()
	for _, d := range blobs {
		if n := f.Count("GET", "/blobs/"+d); n != 1 {
			t.Errorf("upstream saw %d GETs of blob %s, want 1", n, d)
		}
	}
	if n := f.BlobGets(); n != len(blobs) {
		var seen []string
		for _, r := range f.Requests() {
			seen = append(seen, r.Method+" "+r.Path)
		}
		t.Errorf("upstream saw %d blob GETs, want %d; requests:\n%s", n, len(blobs), strings.Join(seen, "\n"))
	}
}

// dockerRunProbe runs ref, without network, and checks its program found
// every layer's file with the bytes img holds.
func dockerRunProbe(t *testing.T, dk *dockerEngine, ref string, img v1.Image) {
	t.Helper()
	cname := fmt.Sprintf("wharftest-run-%08x", rand.Uint32())
	dk.containers = append(dk.containers, cname)
	got := dk.run(t, "run", "--rm", "--network", "none", "--name", cname, ref)
	t.Logf("docker run %s:\n%s", ref, strings.TrimSpace(got))
	if want := probeWant(t, img); got != want {
		t.Errorf("docker run %s printed\n%s\nwant (the image's layer files)\n%s", ref, got, want)
	}
}

// TestDockerHubMirrorThroughWharf runs wharf as most users will: as the
// registry-mirrors of a docker engine, which asks it for Docker Hub images
// by their Hub names (the engine adds "library/" itself) and falls back to
// Docker Hub only if wharf fails. The host's engine has no mirror and must
// not be reconfigured, so this starts a private dockerd, as root; it is
// opt-in: WHARF_E2E_DOCKERD=1.
func TestDockerHubMirrorThroughWharf(t *testing.T) {
	if os.Getenv("WHARF_E2E_DOCKERD") == "" {
		t.Skip("starts a private dockerd as root; set WHARF_E2E_DOCKERD=1 to run it")
	}
	needDocker(t)

	probe := probeLayer(t)
	layer := dockerRandomLayer(t)
	img := runnableImage(t, layer, probe)
	id := imageID(t, img)

	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	name := fmt.Sprintf("wharftest-%08x", rand.Uint32())
	d := upstreamtest.Push(t, reg, "library/"+name+":v1", img).Digest.String()
	m := startMirror(t, faulty.URL, mirrorOpts{officialLibrary: true})
	dk := startDockerd(t, m.URL)

	faulty.ResetCounts()
	dk.pull(t, name+":v1", d, id) // docker.io/library/wharftest-…:v1
	wantUpstreamBlobGets(t, faulty, digests(t, img, layer, probe)...)
	if n := faulty.Count("", "/v2/library/"+name+"/"); n == 0 {
		t.Errorf("upstream saw no request for library/%s", name)
	}

	dk.rmi(t, id)
	faulty.ResetCounts()
	dk.pull(t, "docker.io/library/"+name+"@"+d, d, id)
	wantUpstreamBlobGets(t, faulty)
	dockerRunProbe(t, dk, name+"@"+d, img)
}
