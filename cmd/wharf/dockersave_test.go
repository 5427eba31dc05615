package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The fixture was made here with the docker CLI (engine 20.10, so the
// format before 25: <config hex>.json, <id>/layer.tar uncompressed):
//
//	tar -cf rootfs.tar etc hello.txt
//	docker import --change 'CMD ["/hello.txt"]' rootfs.tar wharf-fixture:v1
//	docker save -o testdata/docker-save.tar wharf-fixture:v1
const (
	fixture        = "testdata/docker-save.tar"
	fixtureImageID = "sha256:c8864888b7b4b2aa4391e42ecfa3ef478bb1ca8dcaaf589bbcd0c8839196daf9"
)

// TestImportDockerSaveFixture imports a tarball docker save wrote, with
// the default upstream (Docker Hub), and serves it offline: the image
// pulls as wharf-fixture:v1 (library/ applied, as for a docker client),
// validates, and keeps its image ID.
func TestImportDockerSaveFixture(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "import", "--data", dir, fixture)
	if err != nil || !strings.Contains(out, "imported docker.io/library/wharf-fixture:v1") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	addr, _ := serveArgs(t, "--offline", "--data", dir)
	img := pullValid(t, addr+"/wharf-fixture:v1")
	if id, _ := img.ConfigName(); id.String() != fixtureImageID {
		t.Errorf("image ID %s, want the saved image's %s", id, fixtureImageID)
	}
	cf, err := img.ConfigFile()
	if err != nil || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "/hello.txt" {
		t.Errorf("config %+v, %v: the saved CMD is lost", cf, err)
	}
	// RepoTags are docker's names: wharf-fixture:v1 is Docker Hub's
	// library/wharf-fixture (as docker 25's index.json spells it), so it
	// lands where docker.io/… goes: the default standing in for Docker
	// Hub, or an upstream named docker.io.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "https://registry.site:5000"}, "imported registry.site:5000/library/wharf-fixture:v1"},
		{[]string{"--upstream", "https://registry.site:5000", "--upstreams", "docker.io=https://registry-1.docker.io"}, "imported docker.io/library/wharf-fixture:v1"},
	} {
		args := append(append([]string{"import", "--data", t.TempDir()}, c.args...), fixture)
		if out, err := runCmd(t, args...); err != nil || !strings.Contains(out, c.want) {
			t.Errorf("import %v: %v, want %q\n%s", c.args, err, c.want, out)
		}
	}
}

// TestImportRefusesTamperedDockerSave changes one byte of the fixture's
// layer: the import fails on its digest and the store keeps nothing of
// that image (verified before visible).
func TestImportRefusesTamperedDockerSave(t *testing.T) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("hello from a docker save fixture"))
	if i < 0 {
		t.Fatal("fixture lacks its file")
	}
	b[i] = 'j'
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, b, 0o644)
	dir := t.TempDir()
	out, err := runCmd(t, "import", "--data", dir, bad)
	if err == nil || !strings.Contains(err.Error(), "digest invalid") {
		t.Fatalf("tampered import: %v\n%s", err, out)
	}
	c, err := cache.Open(cache.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tags, err := c.TaggedImages(); err != nil || len(tags) != 0 {
		t.Errorf("tags after a failed import: %v, %v", tags, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("temp files left: %v", entries)
	}
}

// TestDockerLoadsExportAndSaveImports takes the real docker engine
// through both directions: docker load of a docker-format export (the
// engine recomputes and checks every diff ID), then docker save of what it
// loaded, imported into a fresh store and served offline with the same
// image ID. Skipped where no engine answers; removes what it loaded.
func TestDockerLoadsExportAndSaveImports(t *testing.T) {
	docker := needDockerCLI(t)
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 2, 8192, upstreamtest.DockerManifest)
	id, _ := img.ConfigName()
	repo := "wharftest/airgap-" + id.Hex[:12]
	upstreamtest.Push(t, reg, repo+":v1", img)
	t.Cleanup(func() { docker("rmi", "-f", id.String()) })

	tmp := t.TempDir()
	dirA := filepath.Join(tmp, "a")
	list := filepath.Join(tmp, "list")
	os.WriteFile(list, []byte(repo+":v1\n"), 0o644)
	if out, err := runCmd(t, "warm", "--data", dirA, "--upstream", reg.URL, list); err != nil {
		t.Fatalf("warm: %v\n%s", err, out)
	}
	tarball := filepath.Join(tmp, "docker.tar")
	if out, err := runCmd(t, "export", "--data", dirA, "--upstream", reg.URL, "--format", "docker", "--output", tarball, repo+":v1"); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	start := time.Now()
	out, err := docker("load", "-i", tarball)
	if err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	t.Logf("docker load: %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	named := reg.Host + "/" + repo + ":v1"
	if got, err := docker("image", "inspect", "--format", "{{.Id}}", named); err != nil || strings.TrimSpace(got) != id.String() {
		t.Fatalf("docker image inspect %s: %q, %v; want ID %s", named, got, err, id)
	}

	saved := filepath.Join(tmp, "saved.tar")
	if out, err := docker("save", "-o", saved, named); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	dirB := filepath.Join(tmp, "b")
	if out, err := runCmd(t, "import", "--data", dirB, "--upstream", reg.URL, saved); err != nil {
		t.Fatalf("import of docker save: %v\n%s", err, out)
	}
	addr, _ := serveArgs(t, "--offline", "--upstream", reg.URL, "--data", dirB)
	got := pullValid(t, addr+"/"+repo+":v1")
	if gid, _ := got.ConfigName(); gid != id {
		t.Errorf("image ID after docker save → import: %s, want %s", gid, id)
	}
	wantDiffIDs(t, got, img)
}

// needDockerCLI skips unless an engine answers, and returns a runner.
func needDockerCLI(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("docker is slow; skipped with -short")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skipf("no docker CLI: %v", err)
	}
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("no Docker engine answers `docker info`: %v: %s", err, strings.TrimSpace(out))
	}
	return run
}

func pullValid(t *testing.T, s string) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", s, err)
	}
	// validate.Image reads every layer as gzip; a docker save import
	// keeps docker's uncompressed layers (media type ...layer.v1.tar), so
	// for those the layers are checked here: the bytes hash to the digest
	// and, uncompressed, to the diff ID.
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("validate %s: %v", s, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want func() (v1.Hash, error)
		}{{l.Compressed, l.Digest}, {l.Uncompressed, l.DiffID}} {
			rc, err := c.open()
			if err != nil {
				t.Fatalf("%s layer %d: %v", s, i, err)
			}
			got, _, err := v1.SHA256(rc)
			rc.Close()
			want, _ := c.want()
			if err != nil || got != want {
				t.Errorf("%s layer %d: hashes to %s (%v), want %s", s, i, got, err, want)
			}
		}
	}
	return img
}

// wantDiffIDs checks got's layers are want's, uncompressed.
func wantDiffIDs(t *testing.T, got, want v1.Image) {
	t.Helper()
	gl, _ := got.Layers()
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		g, _ := gl[i].DiffID()
		w, _ := wl[i].DiffID()
		if g != w || digest.Digest(g.String()).Validate() != nil {
			t.Errorf("layer %d: diff ID %s, want %s", i, g, w)
		}
	}
}
