package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// s3srv is the MinIO server this package's tests share (cache/s3/s3test:
// a real server, installed by .ci/install-s3.sh; the tests skip without
// one unless WHARF_S3_REQUIRED is set). TestMain stops it.
var s3srv s3test.Shared

// s3ConfigFile writes a config file keeping content in bucket at
// endpoint under prefix, its secret key in a file of its own, with the smallest
// part size so that a layer of a few MiB is a multipart upload.
func s3ConfigFile(t *testing.T, endpoint, bucket, prefix, accessKey, secretKey string) string {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "s3-secret-key")
	conf := filepath.Join(dir, "wharf.yaml")
	yaml := fmt.Sprintf(`storage:
  s3:
    endpoint: %s
    bucket: %s
    prefix: %s
    region: us-east-1
    pathStyle: true
    accessKey: %s
    secretKeyFile: %s
    partSize: 5MiB
    timeout: 5s
`, endpoint, bucket, prefix, accessKey, keyFile)
	if err := os.WriteFile(keyFile, []byte(secretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// contentDigests are the digests an image's pull stores: its manifest,
// its config and its layers.
func contentDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m, c}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// s3Key is where the S3 store keeps d under prefix.
func s3Key(prefix string, d v1.Hash) string {
	return prefix + "/blobs/" + d.Algorithm + "/" + d.Hex[:2] + "/" + d.Hex
}

// pullThrough pulls ref from the wharf at addr with a fresh client,
// checks every byte, and returns the manifest's digest.
func pullThrough(t *testing.T, addr, ref string) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	img, err := remote.Image(r, remote.WithTransport(tr))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFillsStored waits until the wharf at addr has no fill in flight. A
// client has its last byte once the digest checks, before the fill's Put
// to the store ends; on S3 that Put is an upload, which serve's shutdown
// would cancel (the fill then keeps nothing, as it must).
func waitFillsStored(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "\n"+metrics.NameFillsInFlight+" 0\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fills still in flight:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeKeepsContentOnS3 runs serve with storage.s3 on a real MinIO
// and a real upstream registry: a pull's content lands in the bucket
// under the prefix, and a copy of it in the data directory (the local
// tier); a restart whose local copies are gone serves the image from the
// bucket without asking the upstream, and copies it back in the
// background, after which a hit is a local file; a push lands in the
// bucket too; and verify, du and export, given serve's configuration,
// open the same store (verify and du count exactly what the bucket
// holds).
func TestServeKeepsContentOnS3(t *testing.T) {
	srv := s3srv.Get(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	up := upstreamtest.NewFaulty(t, reg.URL)
	img := upstreamtest.RandomImage(t, 2, 6<<20, upstreamtest.OCIManifest) // layers over a part: multipart uploads
	upstreamtest.Push(t, reg, "team/app:v1", img)
	want := contentDigests(t, img)

	dir := t.TempDir()
	store := []string{"--config", s3ConfigFile(t, srv.Endpoint, bucket, "mirror", srv.User, srv.Key), "--data", dir}
	serve := append([]string{"--upstream", up.URL, "--anonymous-push=true"}, store...)

	logs := newLogSink()
	addr, stop := serveLogged(t, logs, serve...)
	if d := pullThrough(t, addr, "team/app:v1"); d != want[0] {
		t.Fatalf("pulled %s, want %s", d, want[0])
	}
	waitFillsStored(t, addr)
	stop()
	keys := srv.Keys(t, bucket, "")
	for _, d := range want {
		if !slices.Contains(keys, s3Key("mirror", d)) {
			t.Errorf("%s is not in the bucket under mirror/; the bucket holds %q\n%s", d, keys, logs.text())
		}
	}
	for _, k := range keys {
		// Content, and the records the replicas share (cache.Options.Records).
		if !strings.HasPrefix(k, "mirror/blobs/") && !strings.HasPrefix(k, "mirror/records/") {
			t.Errorf("object %s is outside mirror/blobs/ and mirror/records/", k)
		}
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "mirror/records/mirror/") }) {
		t.Errorf("serve on S3 shared no mirrored tag record; the bucket holds %q", keys)
	}
	local := localFiles(t, dir)
	for _, d := range want {
		if _, ok := local[d.Hex]; !ok {
			t.Errorf("%s has no local copy in the data directory; it holds %v", d, local)
		}
	}
	where := fmt.Sprintf("s3://%s/mirror at %s", bucket, srv.Endpoint)
	if !slices.ContainsFunc(logs.all(), func(e logEntry) bool {
		return e.Msg == "wharf serving" && e.Content == where && e.LocalMaxSize == "0" && e.S3MaxSize == "0"
	}) {
		t.Errorf("the start-up log does not say content=%q and both caps:\n%s", where, logs.text())
	}
	if strings.Contains(logs.text(), srv.Key) {
		t.Errorf("the log shows the secret key:\n%s", logs.text())
	}

	// The index is in the data directory, the content in the bucket: a
	// restart whose local copies are gone serves the image as a hit, from
	// the bucket, and copies it back into the data directory.
	if err := os.RemoveAll(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	up.ResetCounts()
	addr, stop = serveArgs(t, serve...)
	if d := pullThrough(t, addr, "team/app:v1"); d != want[0] {
		t.Fatalf("after a restart pulled %s, want %s", d, want[0])
	}
	if n := up.Count("", "/manifests/") + up.Count("", "/blobs/"); n != 0 {
		t.Errorf("after a restart the pull asked the upstream %d times: %+v", n, up.Requests())
	}
	shared := metricValue(t, addr, "wharf_tier_shared_reads_total")
	if shared == 0 {
		t.Error("with no local copies the pull read nothing from the bucket")
	}
	promoted := waitMetric(t, addr, `wharf_tier_promotions_total{result="ok"}`, float64(len(want)))
	local = localFiles(t, dir)
	for _, d := range want {
		if _, ok := local[d.Hex]; !ok {
			t.Errorf("after %v promotions %s has no local copy again; the data directory holds %v", promoted, d, local)
		}
	}
	// Now a pull is served from the local copies (the *os.File path), not
	// the bucket.
	hits := metricValue(t, addr, "wharf_tier_local_hits_total")
	pullThrough(t, addr, "team/app:v1")
	if n := metricValue(t, addr, "wharf_tier_local_hits_total"); n <= hits {
		t.Errorf("a pull of local copies counted %v local hits, before it %v", n, hits)
	}
	if n := metricValue(t, addr, "wharf_tier_shared_reads_total"); n != shared {
		t.Errorf("a pull of local copies read the bucket: %v shared reads, before it %v", n, shared)
	}

	pushed := upstreamtest.RandomImage(t, 1, 64<<10, upstreamtest.OCIManifest)
	ref, _ := name.ParseReference(addr+"/team/pushed:v1", name.Insecure)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if err := remote.Write(ref, pushed, remote.WithTransport(tr)); err != nil {
		t.Fatalf("push: %v", err)
	}
	stop()
	keys = srv.Keys(t, bucket, "mirror/blobs/")
	for _, d := range contentDigests(t, pushed) {
		if !slices.Contains(keys, s3Key("mirror", d)) {
			t.Errorf("pushed %s is not in the bucket", d)
		}
	}

	out, err := runCmd(t, append([]string{"verify"}, store...)...)
	if err != nil || !strings.Contains(out, fmt.Sprintf("checked %d items", len(keys))) || !strings.Contains(out, "; 0 corrupt") {
		t.Errorf("verify of %d objects: %v\n%s", len(keys), err, out)
	}
	out, err = runCmd(t, append([]string{"du", "--json"}, store...)...)
	if err != nil {
		t.Fatalf("du: %v\n%s", err, out)
	}
	var st struct{ Items, Manifests int }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("du --json: %v\n%s", err, out)
	}
	if st.Items != len(keys) || st.Manifests != 2 {
		t.Errorf("du counts %d items, %d manifests; the bucket holds %d objects, 2 manifests", st.Items, st.Manifests, len(keys))
	}
	out, err = runCmd(t, append([]string{"export", "--all", "--output", filepath.Join(t.TempDir(), "layout")}, store...)...)
	if err != nil || !strings.Contains(out, "wrote 2 images") {
		t.Errorf("export --all from the bucket: %v\n%s", err, out)
	}
}

// TestServeFailsFastWithoutItsS3Store: a store that cannot be used stops
// serve at start with an error naming the setting, before it listens,
// and without the secret key in the error.
func TestServeFailsFastWithoutItsS3Store(t *testing.T) {
	cases := []struct {
		name   string
		server bool   // needs the MinIO server
		want   string // in the error
	}{
		{"unreachable", false, "connection refused"},
		{"no such bucket", true, "does not exist"},
		{"wrong secret key", true, "secret key: the store refuses it for access key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, bucket, user, key := "http://"+freePort(t), "wharf", "wharf-test", "not-the-key-0123456789"
			if tc.server {
				srv := s3srv.Get(t)
				endpoint, user, key = srv.Endpoint, srv.User, srv.Key
				switch tc.name {
				case "no such bucket":
					bucket = "no-such-bucket"
				case "wrong secret key":
					bucket, key = srv.Bucket(t), "wrong-"+srv.Key
				}
			}
			addr := freePort(t)
			var logs bytes.Buffer
			start := time.Now()
			err := run(context.Background(), []string{"serve", "--listen", addr, "--upstream", "http://127.0.0.1:1",
				"--config", s3ConfigFile(t, endpoint, bucket, "mirror", user, key), "--data", t.TempDir()}, &logs, &logs)
			if err == nil {
				t.Fatal("serve started")
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("serve took %s to fail", took)
			}
			msg := err.Error()
			for _, want := range []string{"storage.s3", endpoint, tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, key) || strings.Contains(logs.String(), key) {
				t.Errorf("the secret key is shown: %s\n%s", msg, logs.String())
			}
			if strings.Contains(logs.String(), "wharf serving") {
				t.Errorf("serve said it was serving:\n%s", logs.String())
			}
		})
	}
}

func TestS3Warning(t *testing.T) {
	for endpoint, warn := range map[string]bool{
		"https://s3.example.com":  false,
		"http://10.0.0.5:9000":    true,
		"http://minio:9000":       true,
		"http://127.0.0.1:9000":   false,
		"http://localhost:9000":   false,
		"http://[::1]:9000":       false,
		"https://10.0.0.5:9000/":  false,
		"http://s3.example.com:0": true,
	} {
		cfg := config.Default()
		cfg.Storage.S3.Endpoint, cfg.Storage.S3.Bucket = endpoint, "b"
		got := s3Warning(cfg)
		if (got != "") != warn || warn && !strings.Contains(got, "storage.s3.endpoint "+endpoint) {
			t.Errorf("%s: warning %q, want one: %v", endpoint, got, warn)
		}
	}
	if got := s3Warning(config.Default()); got != "" {
		t.Errorf("no S3 store, warning %q", got)
	}
}

// TestS3RoleWarning: a store reached without keys and without iamRole, by
// a process the environment gives a role, is warned about, as are AWS's
// keys left unused by iamRole; with keys, the role switched on alone, no
// role in the environment or no store, nothing is.
func TestS3RoleWarning(t *testing.T) {
	yes := true
	store := config.Default()
	store.Storage.S3.Endpoint, store.Storage.S3.Bucket = "https://s3.eu-west-1.amazonaws.com", "b"
	withKeys, withRole := store, store
	withKeys.Storage.S3.AccessKey, withKeys.Storage.S3.SecretKey = "AKID", "k"
	withRole.Storage.S3.IAMRole = &yes
	irsa := func(k string) (string, bool) {
		if k == "AWS_WEB_IDENTITY_TOKEN_FILE" {
			return "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", true
		}
		return "", false
	}
	none := func(string) (string, bool) { return "", false }
	keysAndRole := func(k string) (string, bool) {
		if k == "AWS_ACCESS_KEY_ID" {
			return "AKID", true
		}
		return irsa(k)
	}
	for _, tc := range []struct {
		name   string
		cfg    config.Config
		lookup func(string) (string, bool)
		says   string // "": no warning
	}{
		{"anonymous with a role at hand", store, irsa, "AWS_WEB_IDENTITY_TOKEN_FILE gives this process a role"},
		{"keys", withKeys, irsa, ""},
		{"the role on", withRole, irsa, ""},
		{"the role on, AWS's keys unused", withRole, keysAndRole, "AWS_SECRET_ACCESS_KEY in the environment are not used"},
		{"no role in the environment", store, none, ""},
		{"a session token alone", store, func(k string) (string, bool) {
			if k == "AWS_SESSION_TOKEN" {
				return "token", true
			}
			return "", false
		}, "AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID"},
		{"no store", config.Default(), irsa, ""},
	} {
		got := s3RoleWarning(tc.cfg, tc.lookup)
		if (got == "") != (tc.says == "") || !strings.Contains(got, tc.says) {
			t.Errorf("%s: warning %q, want one saying %q", tc.name, got, tc.says)
		}
	}
}

// TestS3CredentialsWithoutKeys: a section that names no keys works on the
// bucket with the credentials a deployment on AWS has instead: temporary
// keys in AWS's variables (with their session token), or, with
// storage.s3.iamRole, the role's credentials from its endpoint (here the
// container endpoint of ECS and EKS Pod Identity, on loopback, handing
// out the test MinIO's temporary credentials). Without the token, or
// without a role that answers, the command fails naming the store.
func TestS3CredentialsWithoutKeys(t *testing.T) {
	srv := s3srv.Get(t)
	v := srv.TempCredentials(t)
	conf := filepath.Join(t.TempDir(), "wharf.yaml")
	yaml := fmt.Sprintf("storage:\n  s3:\n    endpoint: %s\n    bucket: %s\n    region: us-east-1\n    pathStyle: true\n    timeout: 5s\n",
		srv.Endpoint, srv.Bucket(t))
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(env, "")
	}
	du := func() error {
		t.Helper()
		out, err := runCmd(t, "du", "--config", conf, "--data", t.TempDir())
		if err != nil {
			out += err.Error()
		}
		if strings.Contains(out, v.SecretAccessKey) || strings.Contains(out, v.SessionToken) {
			t.Errorf("du shows a secret:\n%s", out)
		}
		return err
	}

	t.Setenv("AWS_ACCESS_KEY_ID", v.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", v.SecretAccessKey)
	if err := du(); err == nil {
		t.Fatal("temporary keys without their session token were taken")
	} else if want := fmt.Sprintf("session token: the store refuses it for access key %q", v.AccessKeyID); !strings.Contains(err.Error(), want) {
		t.Errorf("the refusal %v does not say %q", err, want)
	}
	t.Setenv("AWS_SESSION_TOKEN", v.SessionToken)
	if err := du(); err != nil {
		t.Fatalf("with AWS_SESSION_TOKEN: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	var answered atomic.Bool
	role := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answered.Load() {
			http.Error(w, "no role", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey,
			"Token": v.SessionToken, "Expiration": v.Expiration.UTC().Format(time.RFC3339)})
	}))
	defer role.Close()
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", role.URL)
	t.Setenv("WHARF_STORAGE_S3_IAM_ROLE", "true")
	if err := du(); err == nil || !strings.Contains(err.Error(), "IAM role") {
		t.Errorf("a role that hands out nothing: %v; want an error naming the IAM role", err)
	}
	answered.Store(true)
	if err := du(); err != nil {
		t.Fatalf("with the IAM role: %v", err)
	}
}
