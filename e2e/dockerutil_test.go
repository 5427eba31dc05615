package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// dockerTimeout bounds every docker command. The engine here extracts
// layers through fuse-overlayfs, which is slow; a pull of a few MiB still
// finishes in seconds, so two minutes only catches a hang.
const dockerTimeout = 2 * time.Minute

// dockerEngine is the docker CLI talking to the host's engine. It
// remembers the images and containers a test made and removes them in
// t.Cleanup, so the engine is left as it was found.
type dockerEngine struct {
	t          *testing.T
	images     []string // image IDs (config digests)
	containers []string // container names
}

// needDocker skips the test unless a docker CLI is installed and an engine
// answers `docker info`.
func needDocker(t *testing.T) *dockerEngine {
	t.Helper()
	if testing.Short() {
		t.Skip("docker pulls are slow; skipped with -short")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skipf("no Docker engine answers `docker info`: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}} {{.Driver}}").CombinedOutput()
	if err != nil {
		t.Skipf("no Docker engine answers `docker info`: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Logf("docker engine %s", bytes.TrimSpace(out))
	d := &dockerEngine{t: t}
	t.Cleanup(d.cleanup)
	return d
}

// run runs `docker args...` and returns its stdout; on failure it fails
// the test with both streams.
func (d *dockerEngine) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
	defer cancel()
	stdout, stderr, err := dockerExec(ctx, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func dockerExec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return o.String(), e.String(), err
}

// pull pulls ref, checks the engine recorded wantDigest as its repo digest
// and wantID as its image ID, and remembers the image for cleanup.
func (d *dockerEngine) pull(t *testing.T, ref, wantDigest, wantID string) {
	t.Helper()
	d.images = append(d.images, wantID)
	start := time.Now()
	out := d.run(t, "pull", ref)
	t.Logf("docker pull %s: %v\n%s", ref, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	repoDigests := d.run(t, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if want := r.Context().Name() + "@" + wantDigest; !strings.Contains(repoDigests, `"`+want+`"`) {
		t.Errorf("docker pull %s: RepoDigests %s, want %s (the upstream's digest)", ref, strings.TrimSpace(repoDigests), want)
	}
	if id := strings.TrimSpace(d.run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != wantID {
		t.Errorf("docker pull %s: image ID %s, want the config digest %s", ref, id, wantID)
	}
}

// rmi removes images from the engine, so the next pull fetches every
// layer again.
func (d *dockerEngine) rmi(t *testing.T, ids ...string) {
	t.Helper()
	d.run(t, append([]string{"rmi", "-f"}, ids...)...)
}

// cleanup removes every container and image the test made; an image that
// is already gone is not an error.
func (d *dockerEngine) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	for _, c := range d.containers {
		dockerExec(ctx, "rm", "-f", c)
	}
	for _, id := range d.images {
		if _, _, err := dockerExec(ctx, "image", "inspect", id); err != nil {
			continue // gone already
		}
		if _, stderr, err := dockerExec(ctx, "rmi", "-f", id); err != nil {
			d.t.Errorf("cleanup: docker rmi -f %s: %v: %s", id, err, stderr)
		}
	}
}

// probeSource is the program the test images run: it lists the random
// files their layers hold, with their sizes and SHA-256, so a run proves
// every layer arrived and was extracted byte for byte.
const probeSource = `package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	names, _ := filepath.Glob("/random_file_*.txt")
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		h := sha256.New()
		size, err := io.Copy(h, f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s %d %x\n", filepath.Base(n), size, h.Sum(nil))
	}
}
`

// probeEntrypoint is where probeLayer puts the probe in the image.
const probeEntrypoint = "/wharf-probe"

// probeLayer builds the probe as a static linux binary for this machine's
// architecture and wraps it in a Docker layer.
func probeLayer(t *testing.T) v1.Layer {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain to build the image's program: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
	defer cancel()
	bin := filepath.Join(dir, "probe")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	hdr := &tar.Header{
		Name: strings.TrimPrefix(probeEntrypoint, "/"), Typeflag: tar.TypeReg,
		Mode: 0o755, Size: int64(len(prog)), ModTime: time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(prog); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b.Bytes())), nil
	}, tarball.WithMediaType(types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// runnableImage is a Docker schema2 image of layers for linux on this
// machine's architecture whose entrypoint is the probe (one of layers
// must be probeLayer's).
func runnableImage(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.DockerManifestSchema2), types.DockerConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	cf.Config.Entrypoint = []string{probeEntrypoint}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// probeWant is what the probe prints when run in img: one line per random
// file in img's layers, sorted by name as filepath.Glob sorts.
func probeWant(t *testing.T, img v1.Image) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			base := path.Base(hdr.Name)
			if hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(base, "random_file_") {
				continue
			}
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%s %d %x\n", base, n, h.Sum(nil)))
		}
		rc.Close()
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// imageID is the ID docker gives img: its config's digest.
func imageID(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
