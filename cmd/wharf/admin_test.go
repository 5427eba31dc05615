package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// serveFor runs wharf serve on dir, with extra flags, until the returned
// stop is called.
func serveFor(t *testing.T, upstreamURL, dir string, extra ...string) (addr string, stop func()) {
	t.Helper()
	addr = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		args := []string{"serve", "--listen", addr, "--upstream", upstreamURL, "--data", dir, "--log-level", "error"}
		done <- run(ctx, append(args, extra...), io.Discard, io.Discard)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("wharf did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestVerifyGCAndDu(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 2, 16<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	loose := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "team/loose:v1", loose)
	looseLayers, _ := loose.Layers()
	looseDigest, _ := looseLayers[0].Digest()

	dir := t.TempDir()
	addr, stop := serveFor(t, reg.URL, dir)
	ref, _ := name.ParseReference(addr+"/team/app:v1", name.Insecure)
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatal(err)
	}
	// A blob fetched by digest alone: no tag reaches it.
	resp, err := http.Get("http://" + addr + "/v2/team/loose/blobs/" + looseDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	stop()

	out, err := runCmd(t, "du", "--data", dir, "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var st struct {
		Bytes, Items, Manifests, Pulls, Hits int64
		HitRatio                             float64
		Repos                                []struct{ Repo string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("du --json: %v\n%s", err, out)
	}
	if st.Items != 5 || st.Manifests != 1 || st.Pulls == 0 || len(st.Repos) != 1 || !strings.HasSuffix(st.Repos[0].Repo, "/team/app") {
		t.Errorf("du: %+v", st)
	}
	if out, err := runCmd(t, "du", "--data", dir); err != nil || !strings.Contains(out, "TOP BY SIZE") || !strings.Contains(out, "hit ratio") {
		t.Errorf("du: %v\n%s", err, out)
	}

	if out, err := runCmd(t, "verify", "--data", dir); err != nil || !strings.Contains(out, "checked 5 items") || !strings.Contains(out, " 0 corrupt") {
		t.Fatalf("verify on a sound store: %v\n%s", err, out)
	}
	// Corrupt one layer on disk.
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	path := filepath.Join(dir, "blobs", "sha256", ld.Hex[:2], ld.Hex)
	b, _ := os.ReadFile(path)
	b[0] ^= 0xff
	os.WriteFile(path, b, 0o644)
	if out, err := runCmd(t, "verify", "--data", dir); err == nil || !strings.Contains(out, "CORRUPT "+ld.String()) {
		t.Fatalf("verify missed a corrupt blob: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "verify", "--data", dir, "--repair"); err != nil || !strings.Contains(out, "1 quarantined") {
		t.Fatalf("verify --repair: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine", ld.Hex)); err != nil {
		t.Errorf("corrupt blob not in quarantine/: %v", err)
	}
	if out, err := runCmd(t, "verify", "--data", dir); err != nil || !strings.Contains(out, " 0 corrupt") {
		t.Fatalf("verify after repair: %v\n%s", err, out)
	}

	if out, err := runCmd(t, "gc", "--data", dir, "--dry-run"); err != nil || !strings.Contains(out, "would remove 1 ") {
		t.Fatalf("gc --dry-run: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "gc", "--data", dir); err != nil || !strings.Contains(out, "removed 1 ") {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", looseDigest.Hex[:2], looseDigest.Hex)); err == nil {
		t.Error("gc kept a blob no tag reaches")
	}

	// The repaired store serves again: the quarantined layer is re-fetched.
	addr, stop = serveFor(t, reg.URL, dir)
	defer stop()
	ref, _ = name.ParseReference(addr+"/team/app:v1", name.Insecure)
	again, err := remote.Image(ref)
	if err == nil {
		err = validate.Image(again)
	}
	if err != nil {
		t.Fatalf("pull after repair: %v", err)
	}
}

// TestStoreCommandsTakeServeFlags: every store command takes serve's
// command line as it is (its config file, WHARF_* and every flag), and
// ignores what means nothing to it, so one line serves every command.
func TestStoreCommandsTakeServeFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "wharf.yaml")
	os.WriteFile(file, []byte("storage:\n  dir: "+dir+"\n"), 0o644)
	t.Setenv("WHARF_LOG_FORMAT", "json")
	serve := []string{"--config", file, "--listen", "127.0.0.1:1", "--offline", "--log-level", "debug", "--max-size", "1GiB",
		"--upstream", "https://registry.site:5000", "--upstream-official-library", "--upstreams", "ghcr.io=https://ghcr.io",
		"--deletes=false", "--tag-ttl", "1m"}
	list := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(list, []byte("quay.io/x:1\n"), 0o644)
	for _, args := range [][]string{
		{"du", "--json"}, {"gc", "--dry-run"}, {"verify"},
		{"export", "--all", "--output", filepath.Join(t.TempDir(), "x.tar")},
	} {
		out, err := runCmd(t, append(append(args[:1:1], serve...), args[1:]...)...)
		if err != nil && !strings.Contains(err.Error(), "no tagged image") {
			t.Errorf("%s with serve's flags: %v\n%s", args[0], err, out)
		}
	}
	// warm reads them too: the upstreams it names, in its refusal.
	out, err := runCmd(t, append(append([]string{"warm"}, serve...), list)...)
	if err == nil || !strings.Contains(out, "registry quay.io is not an upstream of this wharf (its upstreams: registry.site:5000, ghcr.io)") {
		t.Errorf("warm with serve's flags: %v\n%s", err, out)
	}
}
