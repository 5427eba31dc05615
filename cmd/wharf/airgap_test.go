package main

import (
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
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// serveArgs runs `wharf serve` with args (and a free --listen) until the
// returned stop is called.
func serveArgs(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	addr = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", addr, "--log-level", "error"}, args...), io.Discard, io.Discard)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("wharf did not start: %v", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// upstreamImage is what the upstream holds under a tag: its digest and,
// for an index, the digest of its linux/amd64 image.
type upstreamImage struct {
	digest, amd64 v1.Hash
	index         bool
}

// pushAirGapImages pushes one image of each kind to reg.
func pushAirGapImages(t *testing.T, reg *upstreamtest.Registry) map[string]upstreamImage {
	t.Helper()
	out := map[string]upstreamImage{}
	for tag, mt := range map[string]types.MediaType{"team/schema2:v1": upstreamtest.DockerManifest, "team/oci:v1": upstreamtest.OCIManifest} {
		img := upstreamtest.RandomImage(t, 2, 4096, mt)
		d := upstreamtest.Push(t, reg, tag, img).Digest
		out[tag] = upstreamImage{digest: hashOf(t, d)}
	}
	for tag, mt := range map[string]types.MediaType{"team/multi:v1": upstreamtest.OCIIndex, "team/list:v1": upstreamtest.DockerManifestList} {
		idx := upstreamtest.RandomIndex(t, 3, mt)
		d := upstreamtest.PushIndex(t, reg, tag, idx).Digest
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var amd64 v1.Hash
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.Architecture == "amd64" {
				amd64 = m.Digest
			}
		}
		out[tag] = upstreamImage{digest: hashOf(t, d), amd64: amd64, index: true}
	}
	return out
}

// TestAirGapRoundTrip supplies an air-gapped site the way the README
// says: warm a store from the upstream, export it (OCI layout directory,
// OCI tar, docker tarball), import each into a fresh store, and serve
// that with --offline after the upstream is gone. Every image pulls with
// a real client, validates, and has the upstream's digest; a miss is a
// 404 that says wharf is offline.
func TestAirGapRoundTrip(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	want := pushAirGapImages(t, reg)
	tmp := t.TempDir()
	dirA := filepath.Join(tmp, "connected")
	list := filepath.Join(tmp, "images.txt")
	os.WriteFile(list, []byte("# what the site needs\nteam/schema2:v1\nteam/oci:v1\n\nteam/multi:v1\nteam/list:v1 linux/amd64\n"), 0o644)

	start := time.Now()
	out, err := runCmd(t, "warm", "--data", dirA, "--upstream", reg.URL, list)
	if err != nil || !strings.Contains(out, "warmed 4 of 4 images") {
		t.Fatalf("warm: %v\n%s", err, out)
	}
	t.Logf("warm: %v\n%s", time.Since(start).Round(time.Millisecond), out)
	if out, err := runCmd(t, "warm", "--data", dirA, "--upstream", reg.URL, list); err != nil || !strings.Contains(out, ", 0 fetched") {
		t.Errorf("second warm fetched again: %v\n%s", err, out)
	}
	bad := filepath.Join(tmp, "bad.txt")
	os.WriteFile(bad, []byte("team/oci:v1\nteam/absent:v1\n"), 0o644)
	if out, err := runCmd(t, "warm", "--data", dirA, "--upstream", reg.URL, bad); err == nil ||
		!strings.Contains(out, "FAILED  team/absent:v1") || !strings.Contains(out, "warmed 1 of 2 images") {
		t.Errorf("warm of a missing image: %v\n%s", err, out)
	}

	exports := map[string]struct {
		output string
		args   []string
	}{
		"oci-dir": {filepath.Join(tmp, "layout"), []string{"--all"}},
		"oci-tar": {filepath.Join(tmp, "images.tar"), []string{"team/schema2:v1", "team/oci:v1", "team/multi:v1", "team/list:v1"}},
		"docker":  {filepath.Join(tmp, "docker.tar"), []string{"--format", "docker", "--platform", "linux/amd64", "--all"}},
	}
	dirs := map[string]string{}
	for kind, e := range exports {
		start := time.Now()
		args := append([]string{"export", "--data", dirA, "--upstream", reg.URL, "--output", e.output}, e.args...)
		out, err := runCmd(t, args...)
		if err != nil || !strings.Contains(out, "wrote 4 images") {
			t.Fatalf("export %s: %v\n%s", kind, err, out)
		}
		t.Logf("export %s: %v\n%s", kind, time.Since(start).Round(time.Millisecond), out)
		dirs[kind] = filepath.Join(tmp, "site-"+kind)
		out, err = runCmd(t, "import", "--data", dirs[kind], "--upstream", reg.URL, e.output)
		if err != nil || !strings.Contains(out, "imported 4 tags") {
			t.Fatalf("import %s: %v\n%s", kind, err, out)
		}
	}
	reg.Close() // the far side has no upstream: any request to it fails

	for kind, dir := range dirs {
		t.Run(kind, func(t *testing.T) {
			addr, _ := serveArgs(t, "--offline", "--upstream", reg.URL, "--data", dir)
			for tag, w := range want {
				ref, _ := name.ParseReference(addr+"/"+tag, name.Insecure)
				switch {
				case kind == "docker" && w.index:
					// docker format carries the host's platform only.
					checkImage(t, ref, w.amd64)
				case w.index:
					desc, err := remote.Get(ref)
					if err != nil {
						t.Fatalf("%s: %v", tag, err)
					}
					if desc.Digest != w.digest {
						t.Errorf("%s: %s, want the upstream's %s", tag, desc.Digest, w.digest)
					}
					if tag == "team/multi:v1" {
						idx, err := desc.ImageIndex()
						if err == nil {
							err = validate.Index(idx)
						}
						if err != nil {
							t.Errorf("%s: %v", tag, err)
						}
					}
					amd, _ := name.ParseReference(addr+"/"+tag, name.Insecure)
					img, err := remote.Image(amd, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
					if err != nil {
						t.Fatalf("%s amd64: %v", tag, err)
					}
					if d, _ := img.Digest(); d != w.amd64 {
						t.Errorf("%s amd64: %s, want %s", tag, d, w.amd64)
					}
					if err := validate.Image(img); err != nil {
						t.Errorf("%s amd64: %v", tag, err)
					}
				default:
					checkImage(t, ref, w.digest)
				}
			}
			wantOfflineMiss(t, "http://"+addr+"/v2/team/absent/manifests/v1", "MANIFEST_UNKNOWN")
			wantOfflineMiss(t, "http://"+addr+"/v2/team/oci/blobs/"+digest.FromString("absent").String(), "BLOB_UNKNOWN")
		})
	}
}

// checkImage pulls ref, validates every byte and compares the digest.
func checkImage(t *testing.T, ref name.Reference, want v1.Hash) {
	t.Helper()
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	if d, _ := img.Digest(); d != want {
		t.Errorf("%s: %s, want the upstream's %s", ref, d, want)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("%s: %v", ref, err)
	}
}

// wantOfflineMiss checks a miss on an offline wharf: 404 with the route's
// code and a message that says wharf is offline.
func wantOfflineMiss(t *testing.T, url, code string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 404 || len(body.Errors) != 1 || body.Errors[0].Code != code || !strings.Contains(body.Errors[0].Message, "offline") {
		t.Errorf("GET %s: %d %+v, want 404 %s saying offline", url, resp.StatusCode, body.Errors, code)
	}
}

func hashOf(t *testing.T, d digest.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.String())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTransferCommandsRefuseBadUse: the mistakes an operator makes get a
// clear error before any store is touched or created.
func TestTransferCommandsRefuseBadUse(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--data", missing, "--all", "--output", "x.tar"}, "data directory"},
		{[]string{"export", "--data", missing, "--output", "x.tar"}, "either images or --all"},
		{[]string{"export", "--data", missing, "--all", "--output", "x", "--format", "zip"}, `--format "zip"`},
		{[]string{"warm", "--data", missing}, "one list file"},
		{[]string{"import", "--data", missing}, "at least one path"},
		{[]string{"import", "--data", missing, "airgap_test.go"}, "invalid tar header"},
	} {
		out, err := runCmd(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error containing %q\n%s", tt.args, err, tt.want, out)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a refused command created the data directory")
	}
}

// TestWarmFromANamedUpstream: warm reads serve's upstreams, so an image on
// a second registry is fetched from it and stored under the name serve
// finds it by.
func TestWarmFromANamedUpstream(t *testing.T) {
	def := upstreamtest.NewRegistry(t)
	other := upstreamtest.NewRegistry(t)
	want := upstreamtest.Push(t, other, "team/x:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)).Digest
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "wharf.yaml")
	yaml := "upstream:\n  url: " + def.URL + "\nupstreams:\n  - name: " + other.Host + "\n    url: " + other.URL + "\nstorage:\n  dir: " + dir + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "images.txt")
	os.WriteFile(list, []byte(other.Host+"/team/x:v1\n"), 0o644)
	if out, err := runCmd(t, "warm", "--config", cfg, list); err != nil || !strings.Contains(out, want.String()) {
		t.Fatalf("warm from the named upstream: %v\n%s", err, out)
	}
	out, err := runCmd(t, "du", "--data", dir, "--json")
	if err != nil || !strings.Contains(out, `"Repo": "`+other.Host+`/team/x"`) {
		t.Fatalf("warmed image not stored under %s/team/x: %v\n%s", other.Host, err, out)
	}
}
