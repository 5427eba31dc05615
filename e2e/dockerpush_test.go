package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestDockerPushToWharf pushes with the docker engine: an image the engine
// loaded from a tarball (so wharf has none of its blobs and every layer is
// uploaded), then removes it from the engine, pulls it back from wharf and
// runs it; go-containerregistry validates what wharf stored.
func TestDockerPushToWharf(t *testing.T) {
	dk := needDocker(t)
	img := runnableImage(t, dockerRandomLayer(t), probeLayer(t))
	id := imageID(t, img)
	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})
	name := fmt.Sprintf("%s/site/wharftest-push-%08x:v1", w.Host, rand.Uint32())

	tar := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(tar, mustParse(t, name), img); err != nil {
		t.Fatal(err)
	}
	dk.images = append(dk.images, id)
	dk.run(t, "load", "-i", tar)
	out := dk.run(t, "push", name)
	t.Logf("docker push %s:\n%s", name, strings.TrimSpace(out))

	got, err := remote.Image(mustParse(t, name), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("what docker pushed: %v", err)
	}
	dk.rmi(t, id)
	dk.run(t, "pull", name)
	dockerRunProbe(t, dk, name, img)
}
