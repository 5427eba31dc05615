package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// clientTimeout bounds one client command in the troubleshooting test.
// Every failure it provokes is meant to be quick; a client still running
// after this long is itself the finding (it retries or waits).
const clientTimeout = 90 * time.Second

// clientCall is what an operator asks a client to do: pull or push ref,
// with credentials or without.
type clientCall struct {
	op         string // "pull" or "push"
	ref        string // host:port/repo:tag
	user, pass string // "" for an anonymous client
	img        v1.Image
	// hostsDir is containerd's hosts directory (certs.d) for clients that
	// read one; ref then names the registry wharf mirrors, not wharf.
	hostsDir string
}

// realClient runs one registry client's CLI. run returns everything the
// command printed, stdout and stderr together as a terminal shows them.
type realClient struct {
	name string // the README table's column: "docker", "crane", "ctr"
	run  func(t *testing.T, c clientCall) (string, error)
}

// execClient runs prog with args and extra environment, bounded by
// clientTimeout, and returns its combined output.
func execClient(t *testing.T, env []string, stdin string, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s (%v): %v\n%s", filepath.Base(prog), strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(out.String()))
	if ctx.Err() != nil {
		t.Errorf("%s %s still running after %v", filepath.Base(prog), strings.Join(args, " "), clientTimeout)
	}
	return out.String(), err
}

// dockerConfigDir writes a client config directory (DOCKER_CONFIG) holding
// credentials for host, as `docker login` or `crane auth login` leave it;
// without a user it is empty, so the host's own logins play no part.
func dockerConfigDir(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{}}
	if user != "" {
		cfg["auths"] = map[string]any{host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
		}}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imageTarball writes img as a docker-format tarball tagged ref.
func imageTarball(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, mustParse(t, ref), img); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerClient is the docker CLI and the host's engine. With credentials
// it logs in first, as an operator does: a refused login is what it
// prints. Images it pulled or loaded are removed by t.Cleanup. Without an
// engine it returns why.
func dockerClient(t *testing.T) (realClient, string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		return realClient{}, fmt.Sprintf("no docker CLI: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return realClient{}, fmt.Sprintf("no Docker engine answers `docker info`: %v: %s", err, bytes.TrimSpace(out))
	}
	dk := &dockerEngine{t: t}
	t.Cleanup(dk.cleanup)
	return realClient{name: "docker", run: func(t *testing.T, c clientCall) (string, error) {
		host, _, _ := strings.Cut(c.ref, "/")
		env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, host, "", "")}
		if c.user != "" {
			out, err := execClient(t, env, c.pass, "docker", "login", host, "--username", c.user, "--password-stdin")
			if err != nil {
				return out, err
			}
		}
		switch c.op {
		case "pull":
			out, err := execClient(t, env, "", "docker", "pull", c.ref)
			if err == nil {
				dk.images = append(dk.images, c.ref)
			}
			return out, err
		case "push":
			if out, err := execClient(t, env, "", "docker", "load", "-i", imageTarball(t, c.ref, c.img)); err != nil {
				t.Fatalf("docker load: %v\n%s", err, out)
			}
			dk.images = append(dk.images, imageID(t, c.img))
			return execClient(t, env, "", "docker", "push", c.ref)
		}
		t.Fatalf("docker: no operation %q", c.op)
		return "", nil
	}}, ""
}

// craneClient is crane at the go-containerregistry version this module
// requires, installed with its own module graph (crane needs packages
// wharf's go.sum does not list). Credentials come from its config
// directory, as after `crane auth login` (which stores them without asking
// the registry).
func craneClient(t *testing.T) (realClient, string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		return realClient{}, fmt.Sprintf("no go toolchain to build crane: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	v, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/google/go-containerregistry").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/google/go-containerregistry: %v", err)
	}
	version := strings.TrimSpace(string(v))
	dir := t.TempDir()
	bin := filepath.Join(dir, "crane")
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/google/go-containerregistry/cmd/crane@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return realClient{}, fmt.Sprintf("go install crane@%s: %v: %s", version, err, bytes.TrimSpace(out))
	}
	return realClient{name: "crane", run: func(t *testing.T, c clientCall) (string, error) {
		host, _, _ := strings.Cut(c.ref, "/")
		env := []string{"DOCKER_CONFIG=" + dockerConfigDir(t, host, c.user, c.pass)}
		switch c.op {
		case "pull":
			return execClient(t, env, "", bin, "pull", "--insecure", c.ref, filepath.Join(t.TempDir(), "pulled.tar"))
		case "push":
			return execClient(t, env, "", bin, "push", "--insecure", imageTarball(t, c.ref, c.img), c.ref)
		}
		t.Fatalf("crane: no operation %q", c.op)
		return "", nil
	}}, ""
}

// ctrClient is containerd's ctr against a running containerd: the
// system's, or the one the docker engine runs. It works in a namespace of
// its own, removed with everything in it by t.Cleanup.
func ctrClient(t *testing.T) (realClient, string) {
	t.Helper()
	if _, err := exec.LookPath("ctr"); err != nil {
		return realClient{}, fmt.Sprintf("no ctr (containerd's CLI): %v", err)
	}
	addr := ""
	for _, a := range []string{"/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock"} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := exec.CommandContext(ctx, "ctr", "--address", a, "version").Run()
		cancel()
		if err == nil {
			addr = a
			break
		}
	}
	if addr == "" {
		return realClient{}, "no containerd answers ctr at /run/containerd/containerd.sock or docker's /var/run/docker/containerd/containerd.sock"
	}
	ns := fmt.Sprintf("wharf-trouble-%08x", rand.Uint32())
	base := []string{"--address", addr, "--namespace", ns}
	t.Cleanup(func() { ctrCleanup(t, base, ns) })
	return realClient{name: "ctr", run: func(t *testing.T, c clientCall) (string, error) {
		args := append([]string{}, base...)
		args = append(args, "images", c.op, "--plain-http")
		if c.hostsDir != "" {
			args = append(args, "--hosts-dir", c.hostsDir)
		}
		if c.user != "" {
			args = append(args, "--user", c.user+":"+c.pass)
		}
		switch c.op {
		case "pull":
			return execClient(t, nil, "", "ctr", append(args, c.ref)...)
		case "push":
			imp := append(append([]string{}, base...), "images", "import", "--no-unpack", imageTarball(t, c.ref, c.img))
			if out, err := execClient(t, nil, "", "ctr", imp...); err != nil {
				t.Fatalf("ctr images import: %v\n%s", err, out)
			}
			return execClient(t, nil, "", "ctr", append(args, c.ref)...)
		}
		t.Fatalf("ctr: no operation %q", c.op)
		return "", nil
	}}, ""
}

// ctrCleanup removes the test's containerd namespace: its images (with a
// synchronous garbage collection, which takes their content and
// snapshots along), then the namespace itself.
func ctrCleanup(t *testing.T, base []string, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append(append([]string{}, base...), "images", "ls", "--quiet")...).Output()
	if err != nil {
		t.Errorf("cleanup: ctr images ls: %v", err)
		return
	}
	if refs := strings.Fields(string(out)); len(refs) > 0 {
		args := append(append(append([]string{}, base...), "images", "rm", "--sync"), refs...)
		if out, err := exec.CommandContext(ctx, "ctr", args...).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ctr images rm: %v\n%s", err, out)
		}
	}
	if out, err := exec.CommandContext(ctx, "ctr", base[0], base[1], "namespaces", "rm", ns).CombinedOutput(); err != nil {
		t.Errorf("cleanup: ctr namespaces rm %s: %v\n%s", ns, err, out)
	}
}
