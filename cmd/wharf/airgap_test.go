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
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
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
// that with --offline after the upstream is gone. Every command is given
// serve's configuration the same way (one config file, a WHARF_*
// variable, serve's upstream flags), with a default upstream that is not
// Docker Hub and a second registry named with a port, reached by its
// prefix: every image pulls by the name warm was given, with a real
// client, validates, and has the upstream's digest; a miss is a 404 that
// says wharf is offline.
func TestAirGapRoundTrip(t *testing.T) {
	reg, other := upstreamtest.NewRegistry(t), upstreamtest.NewRegistry(t)
	want := pushAirGapImages(t, reg)
	for _, tag := range []string{"library/big:1", "solo:1"} { // names Docker Hub would rewrite
		d := upstreamtest.Push(t, reg, tag, upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)).Digest
		want[tag] = upstreamImage{digest: hashOf(t, d)}
	}
	d := upstreamtest.Push(t, other, "team/x:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)).Digest
	want["local/team/x:v1"] = upstreamImage{digest: hashOf(t, d)}

	tmp := t.TempDir()
	dirA := filepath.Join(tmp, "connected")
	// The one configuration both sides share: the file names the second
	// registry and its prefix, the environment the default, the flags what
	// serve is given besides (the second registry's address merges into
	// the file's entry by name).
	cfgFile := filepath.Join(tmp, "wharf.yaml")
	os.WriteFile(cfgFile, []byte("upstreams:\n  - name: registry.local:5000\n    prefix: local\n    url: https://registry.local:5000\n"), 0o644)
	t.Setenv("WHARF_UPSTREAM", reg.URL)
	shared := []string{"--config", cfgFile, "--upstreams", "registry.local:5000=" + other.URL, "--upstream-official-library=false"}
	cmd := func(name string, args ...string) (string, error) {
		return runCmd(t, append(append([]string{name}, shared...), args...)...)
	}
	list := filepath.Join(tmp, "images.txt")
	os.WriteFile(list, []byte("# what the site needs\nteam/schema2:v1\nteam/oci:v1\n\nteam/multi:v1\nteam/list:v1 linux/amd64\n"+
		"library/big:1\ndocker.io/solo:1\nlocal/team/x:v1\n"), 0o644)

	start := time.Now()
	out, err := cmd("warm", "--data", dirA, list)
	if err != nil || !strings.Contains(out, "warmed 7 of 7 images") {
		t.Fatalf("warm: %v\n%s", err, out)
	}
	t.Logf("warm: %v\n%s", time.Since(start).Round(time.Millisecond), out)
	if out, err := cmd("warm", "--data", dirA, list); err != nil || !strings.Contains(out, ", 0 fetched") {
		t.Errorf("second warm fetched again: %v\n%s", err, out)
	}
	bad := filepath.Join(tmp, "bad.txt")
	os.WriteFile(bad, []byte("team/oci:v1\nteam/absent:v1\nquay.io/team/oci:v1\n"), 0o644)
	if out, err := cmd("warm", "--data", dirA, bad); err == nil ||
		!strings.Contains(out, "FAILED  team/absent:v1") || !strings.Contains(out, "warmed 1 of 3 images") ||
		!strings.Contains(out, "FAILED  quay.io/team/oci:v1: image \"quay.io/team/oci:v1\": registry quay.io is not an upstream of this wharf") {
		t.Errorf("warm of a missing image and of an unknown registry: %v\n%s", err, out)
	}

	exports := map[string]struct {
		output string
		args   []string
	}{
		"oci-dir": {filepath.Join(tmp, "layout"), []string{"--all"}},
		"oci-tar": {filepath.Join(tmp, "images.tar"), []string{"team/schema2:v1", "team/oci:v1", "team/multi:v1", "team/list:v1",
			"library/big:1", "docker.io/solo:1", "registry.local:5000/team/x:v1"}},
		"docker": {filepath.Join(tmp, "docker.tar"), []string{"--format", "docker", "--platform", "linux/amd64", "--all"}},
	}
	dirs := map[string]string{}
	for kind, e := range exports {
		start := time.Now()
		args := append([]string{"--data", dirA, "--output", e.output}, e.args...)
		out, err := cmd("export", args...)
		if err != nil || !strings.Contains(out, "wrote 7 images") {
			t.Fatalf("export %s: %v\n%s", kind, err, out)
		}
		t.Logf("export %s: %v\n%s", kind, time.Since(start).Round(time.Millisecond), out)
		dirs[kind] = filepath.Join(tmp, "site-"+kind)
		out, err = cmd("import", "--data", dirs[kind], e.output)
		if err != nil || !strings.Contains(out, "imported 7 tags") || strings.Contains(out, "warning") {
			t.Fatalf("import %s: %v\n%s", kind, err, out)
		}
	}
	checkNameMismatches(t, exports["oci-tar"].output, dirs["oci-tar"], reg.URL)
	// An export under another default says where the image is.
	out, err = runCmd(t, "export", "--data", dirA, "--upstream", "https://registry.example", "--output", filepath.Join(tmp, "x.tar"), "team/oci:v1")
	if err == nil || !strings.Contains(err.Error(), "the store holds "+reg.Host+"/team/oci") {
		t.Errorf("export under another default: %v, want a hint naming %s/team/oci\n%s", err, reg.Host, out)
	}
	reg.Close() // the far side has no upstream: any request to it fails
	other.Close()

	for kind, dir := range dirs {
		t.Run(kind, func(t *testing.T) {
			addr, _ := serveArgs(t, append([]string{"--offline", "--data", dir}, shared...)...)
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

// checkNameMismatches: a configuration that differs from the exporter's
// is loud. An import under it skips what it would store where serve never
// looks, naming the registry and the setting to add (and fails if that is
// everything); a serve over a store filled under other upstreams warns at
// start.
func checkNameMismatches(t *testing.T, archive, site, defURL string) {
	t.Helper()
	tmp := t.TempDir()
	// The default alone: the second registry is not configured.
	out, err := runCmd(t, "import", "--data", filepath.Join(tmp, "a"), archive)
	if err != nil || !strings.Contains(out, "imported 6 tags") || !strings.Contains(out, "1 images skipped") ||
		!strings.Contains(out, "warning: skipped registry.local:5000/team/x:v1, which serve would never find: registry registry.local:5000 is not an upstream of this wharf") ||
		!strings.Contains(out, "--upstreams registry.local:5000=") {
		t.Errorf("import without the second registry: %v\n%s", err, out)
	}
	// Another default: nothing of the archive is under it.
	out, err = runCmd(t, "import", "--data", filepath.Join(tmp, "b"), "--upstream", "https://registry.example", archive)
	if err == nil || !strings.Contains(err.Error(), "all 7 images are on registries this wharf does not mirror") {
		t.Errorf("import under another default: %v, want it refused\n%s", err, out)
	}

	c, err := cache.Open(cache.Options{Dir: site})
	if err != nil {
		t.Fatal(err)
	}
	repos, err := c.Repositories()
	c.Close()
	if err != nil || len(repos) != 7 {
		t.Fatalf("site store: %v %v", repos, err)
	}
	for _, tc := range []struct {
		args []string
		want string // "" is no warning
	}{
		{[]string{"--upstream", defURL, "--upstreams", "registry.local:5000=https://x.example", "--offline"}, ""},
		{[]string{"--upstream", "https://registry.example", "--offline"}, "offline, and nothing in the store is under this wharf's upstreams"},
		{[]string{"--upstream", defURL, "--offline"}, "registry.local:5000 (1 repositories)"},
	} {
		cfg, err := config.LoadWith(config.LoadOptions{Args: tc.args, Output: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		var logged strings.Builder
		log := logrus.New()
		log.SetOutput(&logged)
		ups, err := newUpstreams(cfg, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		warnUnserved(repos, ups.set, cfg.OfflineOn(), log)
		ups.Close()
		if got := logged.String(); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("serve %v over the site's store logged %q, want %q", tc.args, got, tc.want)
		}
	}
}
