package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestDockerLoginAndPull: the docker CLI logs in to a wharf with users
// (wrong password refused, right one accepted through the Basic
// challenge), pulls with the stored credentials, and is refused again
// after logout. The CLI keeps its credentials in a config directory of
// the test's own (DOCKER_CONFIG), so the host's logins are untouched; the
// test logs out and removes what it pulled.
func TestDockerLoginAndPull(t *testing.T) {
	dk := needDocker(t)
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir) // for dk's commands too

	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 2, 2048, upstreamtest.DockerManifest)
	repo := fmt.Sprintf("library/wharflogin-%08x", rand.Uint32())
	want := upstreamtest.Push(t, reg, repo+":v1", img).Digest.String()
	m := startMulti(t, multiOpts{
		def:  namedUpstream{url: reg.URL, officialLibrary: true},
		auth: &proxy.AuthOptions{Passwords: newUsers(t, "alice", "alice-secret"), AnonymousPull: true},
	})

	login := func(pw string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "login", m.Host, "--username", "alice", "--password-stdin")
		cmd.Stdin = strings.NewReader(pw)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { exec.Command("docker", "logout", m.Host).Run() })

	if out, err := login("wrong"); err == nil {
		t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
	} else if !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Errorf("wrong password: %s", out)
	}
	if out, err := login("alice-secret"); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	if stored, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); !strings.Contains(string(stored), m.Host) {
		t.Fatalf("docker stored no credentials for %s: %s", m.Host, stored)
	}

	dk.pull(t, m.Host+"/"+repo+":v1", want, imageID(t, img))

	dk.run(t, "logout", m.Host)
	dk.rmi(t, imageID(t, img))
	ctx, cancel := context.WithTimeout(t.Context(), dockerTimeout)
	defer cancel()
	if _, stderr, err := dk.exec(ctx, "pull", m.Host+"/"+repo+":v1"); err == nil {
		t.Error("docker pulled after logout")
	} else {
		// docker refuses a Basic challenge it has no credentials for,
		// even where wharf would allow an anonymous pull (see proxy/auth.go).
		t.Logf("after logout: %s", strings.TrimSpace(stderr))
	}
	if stored, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(stored), `"auth"`) {
		t.Errorf("credentials left after logout: %s", stored)
	}
}
