package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	ctdconfig "github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// What the docs' examples run against: three real registries standing in
// for Docker Hub, ghcr.io and registry.local:5000 (with the images of
// docsImages), and one wharf (the binary, as a process) mirroring them
// with the config setup writes. The hosts and paths the examples use are
// mapped onto these by docsSubstitutions, the only rewriting an example
// gets besides its marker's own `replace "A" "B"` pairs. A block runs in
// an empty directory of its own (but for images.txt and a password file
// pw) with wharf and crane on PATH, WHARF_CONFIG naming that config (so
// warm, export and import take the mirror's upstreams, as the README
// says they take serve's), and HOME and DOCKER_CONFIG in the directory
// (the host's logins are untouched).

// docsImages are the images the examples name, on their registries.
var docsImages = []struct{ registry, ref string }{
	{"hub", "library/alpine:3.20"},
	{"hub", "library/nginx:1.27"}, // an index of linux/amd64 and linux/arm64
	{"ghcr", "owner/tool:1"},
	{"ghcr", "owner/app:1"},
	{"local", "app:1"},
}

// docsImagesTxt is the list the store fixture warms, and what a block's
// images.txt holds until the block writes its own.
const docsImagesTxt = "alpine:3.20\nnginx:1.27            linux/amd64,linux/arm64\n"

type docsEnv struct {
	dir       string // holds the binaries and the config
	bin       string // wharf
	crane     string
	config    string            // the config file every wharf command of a block reads (WHARF_CONFIG)
	mirror    string            // the running wharf's host:port
	closed    string            // a host:port where nothing listens
	digests   map[string]string // "hub/library/alpine:3.20" → manifest digest
	regURLs   map[string]string // "hub", "ghcr", "local" → the registry's URL
	dockerOK  bool
	dockerWhy string
}

// docsSubstitutions maps the hosts and paths the examples use to the
// test's own.
func (e *docsEnv) docsSubstitutions() []string {
	return []string{
		"mirror.example.internal:5000", e.mirror, // the mirror, as the client docs name it
		"127.0.0.1:5000", e.mirror, // the mirror on its default port
		"mirror:5000", e.mirror,
		"https://registry-1.docker.io", "http://" + e.closed, // a miss must not leave the machine
		"/var/lib/wharf", "./far", // the far side of the air gap
	}
}

func (e *docsEnv) substitute(s string) string {
	return strings.NewReplacer(e.docsSubstitutions()...).Replace(s)
}

// setup builds wharf and crane, starts the registries and the mirror, and
// checks for a Docker engine.
func (e *docsEnv) setup(t *testing.T) {
	t.Helper()
	e.dir = t.TempDir()
	e.bin = buildWharf(t)
	e.crane = filepath.Join(e.dir, "crane")
	// crane is a tool dependency in go.mod, so its version is pinned there.
	if out, err := exec.Command("go", "build", "-o", e.crane, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput(); err != nil {
		t.Fatalf("go build crane: %v\n%s", err, out)
	}
	regs := map[string]*upstreamtest.Registry{
		"hub": upstreamtest.NewRegistry(t), "ghcr": upstreamtest.NewRegistry(t), "local": upstreamtest.NewRegistry(t),
	}
	e.digests = map[string]string{}
	e.regURLs = map[string]string{"hub": regs["hub"].URL, "ghcr": regs["ghcr"].URL, "local": regs["local"].URL}
	for _, im := range docsImages {
		var d string
		if strings.HasPrefix(im.ref, "library/nginx") {
			d = upstreamtest.PushIndex(t, regs[im.registry], im.ref, upstreamtest.RandomIndex(t, 2, upstreamtest.DockerManifestList)).Digest.String()
		} else {
			d = upstreamtest.Push(t, regs[im.registry], im.ref, upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)).Digest.String()
		}
		e.digests[im.registry+"/"+im.ref] = d
	}
	e.closed = freeAddr(t)
	e.config = filepath.Join(e.dir, "wharf.yaml")
	cfg := fmt.Sprintf(`upstream:
  url: %s
  name: docker.io
  officialLibrary: true
upstreams:
  - name: ghcr.io
    url: %s
  - name: registry.local:5000
    prefix: local
    url: %s
auth:
  anonymousPush: true
log:
  level: warn
`, regs["hub"].URL, regs["ghcr"].URL, regs["local"].URL)
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mirror = e.startServe(t, filepath.Join(e.dir, "mirror"), nil, "--config", e.config)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		e.dockerWhy = err.Error()
	} else if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		e.dockerWhy = fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out))
	} else {
		e.dockerOK = true
	}
}

// startServe runs `wharf serve args…` in dir on a free loopback port until
// the test ends, and returns its address once /healthz answers.
func (e *docsEnv) startServe(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	logs := &bytes.Buffer{}
	cmd := exec.Command(e.bin, append(append([]string{"serve"}, args...), "--listen", addr)...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, append(os.Environ(), env...), logs
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("wharf serve %s: %v\n%s", strings.Join(args, " "), err, logs)
		}
	})
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf serve %s did not start: %v\n%s", strings.Join(args, " "), err, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling for the port to open
	}
}

// docsPrelude runs before every block: stop at the first failure, and
// `wharf serve` is recorded (serve.args) for the test to start once the
// block is done, rather than blocking the block.
const docsPrelude = `set -e
wharf() {
  if [ "$1" = serve ]; then shift; printf '%s\n' "$@" > serve.args; return; fi
  command wharf "$@"
}
`

var optionalArgRE = regexp.MustCompile(` \[(--[^\]]+)\]`)

// run runs an sh block with bash in a directory of its own; it must exit
// 0. Options: docker (needs a Docker engine), store (./data is a store
// warmed with docsImagesTxt), image=NAME (the docker engine has
// library/alpine:3.20 pulled through wharf and tagged NAME),
// registries.conf (skopeo and podman read
// deploy/clients/podman/registries.conf), login=USER:PASSWORD (the mirror
// has that one user, and docker login is answered with it), `expect
// "TEXT"` (the output holds TEXT) and `replace "A" "B"`. A line with an
// optional `[--flag]` runs with it, then without. A block ending in
// `wharf serve` has that server checked: every image of its images.txt
// must be served with the upstream's digest. Each command of the block
// must be installed: the block is skipped, saying which is missing, if
// one is not.
func (e *docsEnv) run(t *testing.T, b docBlock, args []string) {
	if testing.Short() || e.bin == "" {
		t.Skip("runs wharf and clients as processes; skipped with -short")
	}
	dir := t.TempDir()
	e = e.forBlock(t, dir, args)
	r := e.runSetup(t, b, dir, args)
	// Images the block leaves on the docker engine are removed, by name
	// on the mirror and by the names image= tagged.
	if strings.Contains(r.body, "docker ") {
		t.Cleanup(func() {
			out, _ := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}").Output()
			for _, ref := range strings.Fields(string(out)) {
				if strings.HasPrefix(ref, e.mirror+"/") {
					exec.Command("docker", "image", "rm", "-f", ref).Run()
				}
			}
			for _, c := range r.cleanups {
				exec.Command(c[0], c[1:]...).Run()
			}
		})
	}
	for _, c := range commandsOf(r.body) {
		if _, err := exec.LookPath(c); err != nil && c != "wharf" && c != "crane" {
			t.Skipf("%s needs %s, which is not installed (.ci/run installs it where it can)", b, c)
		}
	}
	for file, content := range map[string]string{"images.txt": docsImagesTxt, "pw": "ci-password\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := docsPrelude + strings.Join(r.pre, "\n") + "\n" + r.body
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), r.env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\nthe block as run:\n%s\noutput:\n%s", b, err, r.body, out)
	}
	t.Logf("%s:\n%s", b, out)
	for _, x := range r.expect {
		if !bytes.Contains(out, []byte(x)) {
			t.Errorf("%s: the output has no %q", b, x)
		}
	}
	if serveArgs, err := os.ReadFile(filepath.Join(dir, "serve.args")); err == nil {
		e.checkServed(t, b, dir, r.env, strings.Split(strings.TrimSpace(string(serveArgs)), "\n"))
	}
}

// blockRun is a block made ready to run: its body as run, the shell lines
// that set it up, its environment, the text its output must hold, and
// the commands that undo what the set-up did outside its directory.
type blockRun struct {
	body     string
	pre, env []string
	expect   []string
	cleanups [][]string
}

// runSetup applies a run marker's options (see run) to block b.
func (e *docsEnv) runSetup(t *testing.T, b docBlock, dir string, args []string) blockRun {
	r := blockRun{
		body: e.substitute(b.body),
		env: []string{
			"PATH=" + filepath.Dir(e.bin) + ":" + filepath.Dir(e.crane) + ":" + os.Getenv("PATH"),
			"WHARF_CONFIG=" + e.config, "HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, ".docker"),
		},
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "docker":
			if !e.dockerOK {
				t.Skipf("no Docker engine answers `docker info`: %s", e.dockerWhy)
			}
		case a == "store":
			r.pre = append(r.pre, "wharf warm --data ./data images.txt >/dev/null")
		case strings.HasPrefix(a, "image="):
			src, tag := e.mirror+"/library/alpine:3.20", strings.TrimPrefix(a, "image=")
			r.pre = append(r.pre, "docker pull -q "+src+" >/dev/null", "docker tag "+src+" "+tag)
			r.cleanups = append(r.cleanups, []string{"docker", "image", "rm", "-f", src, tag})
		case a == "registries.conf":
			conf := e.substitute(string(readDeploy(t, "clients", "podman", "registries.conf")))
			p := filepath.Join(dir, "registries.conf")
			if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			// skopeo before 1.10 reads only /etc/containers/registries.conf
			// or its hidden --registries-conf flag.
			r.env = append(r.env, "CONTAINERS_REGISTRIES_CONF="+p)
			r.pre = append(r.pre, `skopeo() { command skopeo --registries-conf "$CONTAINERS_REGISTRIES_CONF" "$@"; }`)
		case strings.HasPrefix(a, "login="):
			// docker login prompts on a terminal: script(1) gives it one,
			// and types the user and password.
			if _, err := exec.LookPath("script"); err != nil {
				t.Skipf("%s: docker login needs a terminal, and script(1) is not installed", b)
			}
			user, pass, _ := strings.Cut(strings.TrimPrefix(a, "login="), ":")
			r.pre = append(r.pre, fmt.Sprintf(`docker() {
  if [ "$1" = login ]; then printf '%%s\n%%s\n' %s %s | script -qec "docker $*" /dev/null; else command docker "$@"; fi
}`, user, pass))
		case a == "expect" && i+1 < len(args):
			r.expect = append(r.expect, args[i+1])
			i++
		case a == "replace" && i+2 < len(args):
			if !strings.Contains(r.body, args[i+1]) {
				t.Errorf("%s: replace %q: not in the block", b, args[i+1])
			}
			r.body = strings.ReplaceAll(r.body, args[i+1], args[i+2])
			i += 2
		default:
			t.Fatalf("%s: unknown run option %q", b, a)
		}
	}
	var lines []string
	for _, l := range strings.Split(r.body, "\n") {
		if m := optionalArgRE.FindStringSubmatch(l); m != nil {
			lines = append(lines, strings.Replace(l, m[0], " "+m[1], 1))
			l = strings.Replace(l, m[0], "", 1)
		}
		lines = append(lines, l)
	}
	r.body = strings.Join(lines, "\n")
	return r
}

// forBlock is the environment a block runs in: with a login= option, the
// mirror is a second wharf of the same upstreams whose one user is the
// option's (--htpasswd, --anonymous-pull).
func (e *docsEnv) forBlock(t *testing.T, dir string, args []string) *docsEnv {
	for _, a := range args {
		login, ok := strings.CutPrefix(a, "login=")
		if !ok {
			continue
		}
		user, pass, _ := strings.Cut(login, ":")
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, ".htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		users := *e
		users.mirror = e.startServe(t, t.TempDir(), nil, "--config", e.config, "--htpasswd", htpasswd, "--anonymous-pull=true", "--anonymous-push=false")
		return &users
	}
	return e
}

// commandsOf lists the programs an sh block runs: the first word of each
// command line (after a pipe or && too), heredoc bodies and variable
// assignments aside.
func commandsOf(body string) []string {
	var cmds []string
	seen := map[string]bool{}
	heredoc := ""
	for _, l := range strings.Split(body, "\n") {
		if heredoc != "" {
			if strings.TrimSpace(l) == heredoc {
				heredoc = ""
			}
			continue
		}
		if i := strings.Index(l, "<<'"); i >= 0 {
			heredoc, _, _ = strings.Cut(l[i+3:], "'")
		}
		l, _, _ = strings.Cut(l, "#")
		for _, part := range regexp.MustCompile(`\|\||&&|\||;`).Split(l, -1) {
			f := strings.Fields(part)
			if len(f) == 0 || strings.Contains(f[0], "=") || strings.HasPrefix(f[0], "-") || strings.HasPrefix(f[0], "\\") {
				continue
			}
			if !seen[f[0]] {
				seen[f[0]] = true
				cmds = append(cmds, f[0])
			}
		}
	}
	return cmds
}

// checkServed starts the `wharf serve` a block ended with and pulls every
// image of the block's images.txt from it, by the upstream's digest.
func (e *docsEnv) checkServed(t *testing.T, b docBlock, dir string, env, args []string) {
	addr := e.startServe(t, dir, env, args...)
	list, err := os.ReadFile(filepath.Join(dir, "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	n := 0
	for _, l := range strings.Split(string(list), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		n++
		ref, err := name.ParseReference(addr+"/"+f[0], name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(ref, remote.WithTransport(tr))
		if err != nil {
			t.Errorf("%s: wharf serve %s does not serve %s: %v", b, strings.Join(args, " "), f[0], err)
			continue
		}
		if want := e.wantDigest(f[0]); desc.Digest.String() != want {
			t.Errorf("%s: %s served as %s, the upstream has %s", b, f[0], desc.Digest, want)
		}
	}
	if n == 0 {
		t.Errorf("%s: images.txt lists no image", b)
	}
}

// wantDigest is the upstream's digest of a reference as the docs write
// it: "alpine:3.20", "ghcr.io/owner/tool@sha256:…", "registry.local:5000/app:1".
func (e *docsEnv) wantDigest(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	reg := "hub"
	for host, r := range map[string]string{"ghcr.io/": "ghcr", "registry.local:5000/": "local", "docker.io/": "hub"} {
		if rest, ok := strings.CutPrefix(ref, host); ok {
			reg, ref = r, rest
		}
	}
	if reg == "hub" && !strings.Contains(ref, "/") {
		ref = "library/" + ref
	}
	return e.digests[reg+"/"+ref]
}

// load feeds a file's content to what reads it.
func (e *docsEnv) load(t *testing.T, b docBlock, args []string) {
	if len(args) == 0 {
		t.Fatalf("%s: load what?", b)
	}
	switch args[0] {
	case "wharf-config":
		p := loadWharfConfig(t, b)
		if len(args) > 1 && args[1] == "serve" {
			e.serveWharfConfig(t, b, p)
		}
	case "daemon.json":
		e.loadDaemonJSON(t, b)
	case "hosts.toml":
		if len(args) != 2 {
			t.Fatalf("%s: load: hosts.toml DIR", b)
		}
		e.loadHostsTOML(t, b, args[1])
	default:
		t.Fatalf("%s: cannot load %q", b, args[0])
	}
}

// docsConfigFiles is what a file a wharf config example names holds, by
// the setting naming it; the loader reads them.
var docsConfigFiles = map[string]string{
	"passwordFile":  "secret\n",
	"secretKeyFile": "secret\n",
	"secretFile":    "a-cluster-secret-of-16-bytes-or-more\n",
	"dockerConfig":  `{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}`,
	"htpasswd":      "",
}

var configPathRE = regexp.MustCompile(`(?m)^\s*(?:- )?\s*(\w+):\s*(/\S+)`)

// loadWharfConfig loads the block as `wharf serve --config` would, which
// also validates every setting. The files it names are made in a
// temporary directory (a CA file holds a self-signed certificate).
func loadWharfConfig(t *testing.T, b docBlock) (file string) {
	dir := t.TempDir()
	body := b.body
	for _, m := range configPathRE.FindAllStringSubmatch(b.body, -1) {
		content, ok := docsConfigFiles[m[1]]
		if m[1] == "caFile" {
			content, ok = selfSignedPEM(t), true
		}
		if !ok {
			continue
		}
		p := filepath.Join(dir, "files", m[2])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		body = strings.ReplaceAll(body, " "+m[2], " "+p)
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadWith(config.LoadOptions{Args: []string{"--config", p}, Output: io.Discard}); err != nil {
		t.Fatalf("%s does not load: %v", b, err)
	}
	return p
}

var (
	configURLRE  = regexp.MustCompile(`(?m)^(\s*(?:- )?\s*url:\s*)(\S+)`)
	configNameRE = regexp.MustCompile(`(?m)^\s*- name:\s*(\S+)`)
	wharfRefRE   = regexp.MustCompile(`\bwharf:5000/(\S+)`)
)

// serveWharfConfig serves a loaded config example with each upstream's
// URL pointing at the test's registry of that name (the default upstream
// keeping Docker Hub's name), and pulls what its comments say:
// library/alpine:3.20 and ghcr.io/owner/app:1, and each
// `wharf:5000/NAME` a comment gives, as NAME:1.
func (e *docsEnv) serveWharfConfig(t *testing.T, b docBlock, file string) {
	if testing.Short() || e.bin == "" {
		t.Skip("runs wharf as a process; skipped with -short")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	regs := map[string]string{"docker.io": e.regURLs["hub"], "ghcr.io": e.regURLs["ghcr"], "registry.local:5000": e.regURLs["local"]}
	names := []string{"docker.io"}
	for _, m := range configNameRE.FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	urls := configURLRE.FindAllStringSubmatchIndex(string(data), -1)
	if len(urls) != len(names) {
		t.Fatalf("%s: %d url settings for %d upstreams", b, len(urls), len(names))
	}
	var out strings.Builder
	last := 0
	for i, m := range urls {
		u, ok := regs[names[i]]
		if !ok {
			t.Fatalf("%s: no test registry stands in for %s", b, names[i])
		}
		out.WriteString(string(data[last:m[4]]) + u)
		last = m[5]
	}
	out.WriteString(string(data[last:]))
	served := filepath.Join(t.TempDir(), "served.yaml")
	if err := os.WriteFile(served, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := e.startServe(t, t.TempDir(), []string{"WHARF_UPSTREAM_NAME=docker.io", "WHARF_UPSTREAM_OFFICIAL_LIBRARY=true"},
		"--config", served)
	want := map[string]string{
		"library/alpine:3.20": e.digests["hub/library/alpine:3.20"],
		"ghcr.io/owner/app:1": e.digests["ghcr/owner/app:1"],
	}
	for _, m := range wharfRefRE.FindAllStringSubmatch(b.body, -1) {
		if m[1] == "local/app" {
			want[m[1]+":1"] = e.digests["local/app:1"]
		} else {
			t.Errorf("%s: no test image for wharf:5000/%s", b, m[1])
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	for ref, d := range want {
		r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(r, remote.WithTransport(tr))
		if err != nil || desc.Digest.String() != d {
			t.Errorf("%s: %s through the served example: %v %v, want %s", b, ref, desc, err, d)
		}
	}
}

// dockerdKeys are the daemon.json keys of dockerd's registry settings
// (dockerd refuses to start on an unknown key).
var dockerdKeys = map[string]bool{
	"registry-mirrors": true, "insecure-registries": true, "allow-nondistributable-artifacts": true,
	"max-concurrent-downloads": true, "max-concurrent-uploads": true, "max-download-attempts": true,
}

// loadDaemonJSON checks a daemon.json as dockerd reads it: known keys,
// mirrors as scheme://host[:port] URLs, insecure registries as host[:port]
// covering every plain-HTTP mirror; then asks each mirror for
// library/alpine:3.20 the way dockerd does for a Docker Hub pull.
func (e *docsEnv) loadDaemonJSON(t *testing.T, b docBlock) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b.body), &raw); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	for k := range raw {
		if !dockerdKeys[k] {
			t.Errorf("%s: %q is not a dockerd registry setting", b, k)
		}
	}
	var d struct {
		Mirrors  []string `json:"registry-mirrors"`
		Insecure []string `json:"insecure-registries"`
	}
	if err := json.Unmarshal([]byte(b.body), &d); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(d.Mirrors) == 0 {
		t.Fatalf("%s: no registry-mirrors", b)
	}
	for _, m := range d.Mirrors {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			t.Errorf("%s: registry mirror %q is not scheme://host[:port] (dockerd refuses it)", b, m)
			continue
		}
		if u.Scheme == "http" && !strings.HasPrefix(u.Host, "127.") && !strings.Contains(strings.Join(d.Insecure, " "), u.Host) {
			t.Errorf("%s: plain-HTTP mirror %s is not in insecure-registries: dockerd would not use it", b, u.Host)
		}
	}
	for _, h := range d.Insecure {
		if strings.Contains(h, "://") {
			t.Errorf("%s: insecure registry %q has a scheme (dockerd wants host[:port] or a CIDR)", b, h)
		}
	}
	if testing.Short() || e.bin == "" {
		return
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	for _, m := range d.Mirrors {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
			strings.TrimSuffix(e.substitute(m), "/")+"/v2/library/alpine/manifests/3.20", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: mirror %s: %v", b, m, err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get("Docker-Content-Digest"), e.digests["hub/library/alpine:3.20"]; resp.StatusCode != 200 || got != want {
			t.Errorf("%s: mirror %s answered %s with %s, want 200 with %s", b, m, resp.Status, got, want)
		}
	}
}

// hostsTOMLHost is a [host."…"] table of containerd's hosts.toml (and its
// top level, with server).
type hostsTOMLHost struct {
	Server       string                   `toml:"server"`
	Capabilities []string                 `toml:"capabilities"`
	CA           any                      `toml:"ca"`
	Client       any                      `toml:"client"`
	SkipVerify   *bool                    `toml:"skip_verify"`
	Header       map[string]any           `toml:"header"`
	OverridePath *bool                    `toml:"override_path"`
	DialTimeout  string                   `toml:"dial_timeout"`
	Host         map[string]hostsTOMLHost `toml:"host"`
}

// checkHostsTOML decodes the block strictly: containerd ignores keys it
// does not know, so a misspelt one would pass its resolver unnoticed.
func checkHostsTOML(t *testing.T, b docBlock) {
	var h hostsTOMLHost
	if err := toml.NewDecoder(strings.NewReader(b.body)).DisallowUnknownFields().Decode(&h); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			t.Fatalf("%s: keys containerd does not know:\n%s", b, strict.String())
		}
		t.Fatalf("%s: %v", b, err)
	}
	if len(h.Host) == 0 {
		t.Errorf("%s: no [host.…] table", b)
	}
	for name, host := range h.Host {
		if host.Server != "" || len(host.Host) > 0 {
			t.Errorf("%s: [host.%q] has server or host keys", b, name)
		}
		for _, c := range host.Capabilities {
			if c != "pull" && c != "resolve" && c != "push" {
				t.Errorf("%s: [host.%q] capability %q (containerd knows pull, resolve, push)", b, name, c)
			}
		}
	}
}

// loadHostsTOML installs the block as <dir>/hosts.toml and resolves and
// fetches images with containerd's own resolver, which must go through
// wharf: the server a hosts.toml may name is mapped to a closed port.
func (e *docsEnv) loadHostsTOML(t *testing.T, b docBlock, dir string) {
	if testing.Short() || e.bin == "" {
		t.Skip("runs wharf as a process; skipped with -short")
	}
	checkHostsTOML(t, b)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, dir, "hosts.toml"), []byte(e.substitute(b.body)), 0o644); err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{"docker.io/library/alpine:3.20": e.digests["hub/library/alpine:3.20"]}
	if dir == "_default" {
		refs["ghcr.io/owner/app:1"] = e.digests["ghcr/owner/app:1"]
		refs["registry.local:5000/app:1"] = e.digests["local/app:1"]
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	defer tr.CloseIdleConnections()
	ctx := t.Context()
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: ctdconfig.ConfigureHosts(ctx, ctdconfig.HostOptions{
			HostDir:       ctdconfig.HostDirFromRoot(root),
			DefaultScheme: "http",
			UpdateClient:  func(c *http.Client) error { c.Transport = tr; return nil },
		}),
	})
	for ref, want := range refs {
		n, desc, err := resolver.Resolve(ctx, ref)
		if err != nil {
			t.Errorf("%s: containerd resolves %s: %v", b, ref, err)
			continue
		}
		if desc.Digest.String() != want {
			t.Errorf("%s: %s resolved to %s, the upstream has %s", b, ref, desc.Digest, want)
		}
		f, err := resolver.Fetcher(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		fetchVerified(ctx, t, f, desc)
	}
}

// selfSignedPEM is a CA certificate in PEM.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docs CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
