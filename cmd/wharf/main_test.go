package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if a goroutine outlives them: serve
// starts its server, signal and reload goroutines, and each must stop when
// its context ends. The clients' idle keep-alive connections (net/http's
// and go-containerregistry's transports) are closed first rather than
// ignored; distribution's notification broadcaster cannot be stopped.
func TestMain(m *testing.M) {
	code := m.Run()
	s3srv.Stop() // its connections' goroutines end with it
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if tr, ok := remote.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	if code == 0 {
		if err := goleak.Find(upstreamtest.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "wharf ") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"--help"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "wharf serve") {
		t.Errorf("--help: %q, %v", out.String(), err)
	}
	errOut.Reset()
	if err := run(context.Background(), []string{"serve", "--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve --help: %v", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, &out, &errOut); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--max-size", "20XB", "--log-format", "xml", "--listen", "nope"}, &out, &errOut)
	if err == nil {
		t.Fatal("bad flags accepted")
	}
	for _, field := range []string{"max-size", "log.format", "listen"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServePullsAndShutsDown runs `wharf serve` as a user would (flags
// only), pulls an image through it with a real client, and stops it.
func TestServePullsAndShutsDown(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	want := upstreamtest.Push(t, reg, "library/hello:v1", upstreamtest.RandomImage(t, 2, 8192, upstreamtest.DockerManifest)).Digest
	addr := freePort(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--upstream", reg.URL, "--upstream-official-library=true",
			"--data", t.TempDir(), "--log-level", "warn"}, os.Stdout, &logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ref, _ := name.ParseReference(addr+"/hello:v1", name.Insecure)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != want.String() {
		t.Errorf("pulled %s, want %s", d, want)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestReadmeDocumentsEverySetting keeps the README's configuration table
// in step with the settings wharf accepts.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		for _, want := range []string{"--" + s.Flag, s.Env} {
			if !bytes.Contains(readme, []byte(want)) {
				t.Errorf("README.md does not mention %s", want)
			}
		}
	}
	for _, cmd := range []string{"make run", "make test"} {
		if !bytes.Contains(readme[:min(len(readme), 1500)], []byte(cmd)) {
			t.Errorf("README.md does not start with %q", cmd)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	if got := probeTarget(nil, "0.0.0.0:6000"); got != "http://127.0.0.1:6000/healthz" {
		t.Errorf("probe target from WHARF_LISTEN: %s", got)
	}
	if got := probeTarget(nil, ""); got != "http://127.0.0.1:5000/healthz" {
		t.Errorf("default probe target: %s", got)
	}
	reg := upstreamtest.NewRegistry(t)
	addr, stop := serveFor(t, reg.URL, t.TempDir())
	if _, err := runCmd(t, "healthcheck", "http://"+addr+"/healthz"); err != nil {
		t.Errorf("healthcheck of a serving wharf: %v", err)
	}
	stop()
	if _, err := runCmd(t, "healthcheck", "http://"+addr+"/healthz"); err == nil {
		t.Error("healthcheck of a stopped wharf succeeded")
	}
}
