package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestDeployClusterCompose runs deploy/cluster/compose.yaml on a Docker
// engine: wharf:local from build-local.sh, and MinIO and HAProxy images
// built FROM scratch (no registry answers here) from the static MinIO
// binary and the host's haproxy with its libraries. It pushes an image
// through HAProxy and pulls it back, then takes everything down.
//
// Until wharf's loader has the cluster settings the replicas would refuse
// config.yaml, so the test then runs one replica (wharf-1) with the
// config's cluster section removed: MinIO, the bucket, HAProxy, the
// secrets and wharf on the bucket are still exercised. MinIO's mc (the
// s3-bucket service and MinIO's health check) is replaced by
// testdata/s3tool, since the scratch image has no shell.
func TestDeployClusterCompose(t *testing.T) {
	dk := needDeployEngine(t)
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skipf("no docker-compose: %v", err)
	}
	minioBin := minioServerBinary(t)
	haproxyBin, err := exec.LookPath("haproxy")
	if err != nil {
		haproxyBin = "/usr/sbin/haproxy"
	}
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("no haproxy on this host to build the HAProxy image from (apt-get install haproxy): %v", err)
	}

	suffix := fmt.Sprintf("%08x", rand.Uint32())
	wharfImg := "wharf-cluster-test:" + suffix
	dk.buildLocalImage(t, wharfImg)
	s3tool := filepath.Join(t.TempDir(), "s3tool")
	deployRunEnv(t, []string{"CGO_ENABLED=0", "GOFLAGS="}, "go", "build", "-o", s3tool, "./testdata/s3tool")
	minioImg := dk.scratchImage(t, "wharf-cluster-test-minio:"+suffix, map[string]string{minioBin: "/minio", s3tool: "/s3tool"},
		"ENTRYPOINT [\"/minio\"]")
	haproxyFiles := map[string]string{haproxyBin: "/usr/sbin/haproxy"}
	for _, lib := range sharedLibraries(t, haproxyBin) {
		haproxyFiles[lib] = lib
	}
	haproxyImg := dk.scratchImage(t, "wharf-cluster-test-haproxy:"+suffix, haproxyFiles,
		"USER 65534:65534\nENTRYPOINT [\"/usr/sbin/haproxy\", \"-db\", \"-f\", \"/usr/local/etc/haproxy/haproxy.cfg\"]")

	// The override: s3tool for mc; anonymous pushes, and offline, as no
	// upstream answers here (a push's first HEAD would wait on Docker
	// Hub); and before the cluster settings exist, wharf-1 alone on the
	// config without its cluster section.
	dir := t.TempDir()
	override := `services:
  s3:
    healthcheck:
      test: ["CMD", "/s3tool", "ready", "http://127.0.0.1:9000"]
  s3-bucket:
    entrypoint: ["/s3tool"]
    command: ["mb", "http://s3:9000", "wharf", "wharf-trial", "/run/secrets/s3_secret_key"]
`
	// Every replica: anonymous pushes, and offline, as no upstream
	// answers here (a push's first HEAD would wait on Docker Hub).
	for _, r := range clusterReplicas {
		override += "  " + r + ":\n    environment:\n      WHARF_ANONYMOUS_PUSH: \"true\"\n      WHARF_OFFLINE: \"true\"\n"
	}
	overrideFile := filepath.Join(dir, "override.yaml")
	if err := os.WriteFile(overrideFile, []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}

	project := "wharfclustertest" + suffix
	port := freeLoopbackPort(t)
	env := []string{
		"WHARF_IMAGE=" + wharfImg, "MINIO_IMAGE=" + minioImg, "MC_IMAGE=" + minioImg, "HAPROXY_IMAGE=" + haproxyImg,
		"WHARF_PUBLISH=127.0.0.1:" + strconv.Itoa(port),
	}
	args := []string{"-p", project, "-f", deployPath(t, "cluster", "compose.yaml"), "-f", overrideFile}
	dk.composeDown(t, compose, env, args, project)
	ctx := deployTimeout(t)
	logs := func() string {
		o, e, _ := deployExec(context.Background(), env, compose, append(args, "logs", "--no-color", "--tail", "30")...)
		return o + e
	}
	if stdout, stderr, err := deployExec(ctx, env, compose, append(args, "up", "-d", "--no-build")...); err != nil {
		t.Fatalf("docker-compose up: %v\n%s%s\n%s", err, stdout, stderr, logs())
	}
	hc := deployHTTP(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHealthz(t, hc, base, logs)
	checkV2(t, hc, base)

	// Push through HAProxy, then pull back and check every byte.
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(fmt.Sprintf("127.0.0.1:%d/cluster/test:1", port), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push through HAProxy: %v\n%s", err, logs())
	}
	got, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull through HAProxy: %v\n%s", err, logs())
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("the image pulled back does not validate: %v", err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Errorf("pulled %s (%v), pushed %s", d, err, want)
	}
}

// minioServerBinary finds the static MinIO server as cache/s3/s3test
// does: $WHARF_MINIO, where .ci/install-s3.sh links it, $PATH; it skips
// the test without one.
func minioServerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WHARF_MINIO"); p != "" {
		return p
	}
	if dir, err := os.UserCacheDir(); err == nil {
		if p := filepath.Join(dir, "wharf", "bin", "minio"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		t.Skipf("no MinIO binary for the S3 image (.ci/install-s3.sh, or WHARF_MINIO): %v", err)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// sharedLibraries lists the libraries ldd says bin loads, the dynamic
// loader included, with symlinks resolved.
func sharedLibraries(t *testing.T, bin string) []string {
	t.Helper()
	out := deployRun(t, deployTimeout(t), "ldd", bin)
	var libs []string
	for _, l := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	if len(libs) == 0 {
		t.Fatalf("ldd %s lists no library:\n%s", bin, out)
	}
	return libs
}

// scratchImage builds an image FROM scratch holding files (host path →
// path in the image, symlinks followed) plus the given instructions, and
// removes it in t.Cleanup.
func (e *deployEngine) scratchImage(t *testing.T, tag string, files map[string]string, instructions string) string {
	t.Helper()
	dir := t.TempDir()
	dockerfile := "FROM scratch\n"
	i := 0
	for src, dst := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("f%d", i)
		i++
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
		dockerfile += fmt.Sprintf("COPY %s %s\n", name, dst)
	}
	dockerfile += instructions + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	e.onCleanup(t, "rmi", tag)
	e.run(t, "build", "-q", "-t", tag, dir)
	return tag
}

// deployRunEnv runs a command with env added to the test's, in e2e/.
func deployRunEnv(t *testing.T, env []string, prog string, args ...string) {
	t.Helper()
	if stdout, stderr, err := deployExec(deployTimeout(t), env, prog, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", prog, strings.Join(args, " "), err, stdout, stderr)
	}
}
