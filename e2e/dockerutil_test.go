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
	"syscall"
	"testing"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// dockerTimeout bounds every docker command. A pull of the few MiB these
// tests use takes well under a second even on fuse-overlayfs, so two
// minutes only catches a hang (a daemon retrying, a stalled wharf).
const dockerTimeout = 2 * time.Minute

// dockerEngine is the docker CLI talking to an engine: the host's, or a
// private one (startDockerd). It remembers the images and containers a
// test made and removes them in t.Cleanup, so the engine is left as it
// was found.
type dockerEngine struct {
	t          *testing.T
	host       string   // DOCKER_HOST; "" for the CLI's default
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
	stdout, stderr, err := d.exec(ctx, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func (d *dockerEngine) exec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	if d.host != "" {
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	}
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
	// The engine records repo digests under the familiar name: without
	// "docker.io/library/" for Docker Hub images.
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := reference.FamiliarName(named) + "@" + wantDigest; !strings.Contains(repoDigests, `"`+want+`"`) {
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
		d.exec(ctx, "rm", "-f", c)
	}
	for _, id := range d.images {
		if _, _, err := d.exec(ctx, "image", "inspect", id); err != nil {
			continue // gone already
		}
		if _, stderr, err := d.exec(ctx, "rmi", "-f", id); err != nil {
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

// startDockerd runs a private docker engine whose registry-mirrors is
// mirrorURL, for what the host's engine can't be made to do without
// reconfiguring and restarting it. It needs root. It keeps everything
// under a temporary directory (data and exec roots, socket, log), makes
// no bridge and no iptables rules, stores layers with vfs (nothing to
// mount), and ignores the host's /etc/docker/daemon.json. Its containerd is
// its own child and stops with it, in t.Cleanup.
func startDockerd(t *testing.T, mirrorURL string) *dockerEngine {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skipf("no dockerd to run a private engine: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("a private dockerd needs root")
	}
	// Not t.TempDir: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "wharf-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "dockerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	cmd := exec.Command(dockerd, "--config-file", cfg,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "--host", sock,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--storage-driver=vfs",
		"--registry-mirror="+mirrorURL)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("dockerd did not stop in 30s; killed")
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b[max(0, len(b)-4000):])
	}

	d := &dockerEngine{t: t, host: sock}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		mirrors, _, err := d.exec(ctx, "info", "--format", "{{json .RegistryConfig.Mirrors}}")
		cancel()
		if err == nil {
			if !strings.Contains(mirrors, strings.TrimSuffix(mirrorURL, "/")) {
				t.Fatalf("private dockerd's registry mirrors are %s, want %s", strings.TrimSpace(mirrors), mirrorURL)
			}
			break
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("private dockerd exited: %v\n%s", err, logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("private dockerd not answering after a minute\n%s", logTail())
		}
	}
	t.Cleanup(d.cleanup)
	return d
}
