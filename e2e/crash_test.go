package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// buildWharf compiles bin/wharf for tests that run it as a process.
func buildWharf(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wharf")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/wharf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// wharfProc is wharf serve running as a child process.
type wharfProc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
}

// startWharfProc runs wharf serve on its defaults but for the listen
// address, data directory, upstream and extra flags.
func startWharfProc(t *testing.T, bin, dir, upstreamURL string, extra ...string) *wharfProc {
	t.Helper()
	addr := freeAddr(t)
	logs := &bytes.Buffer{}
	args := append([]string{"serve", "--listen", addr, "--data", dir, "--upstream", upstreamURL,
		"--log-level", "warn", "--upstream-retries", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &wharfProc{cmd: cmd, addr: addr, logs: logs}
	t.Cleanup(p.kill) // a test that fails before stopping it leaves no process behind
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("wharf did not start: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *wharfProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func (p *wharfProc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("wharf exited with %v\n%s", err, p.logs)
	}
}

// TestCrashAtAnyMomentLeavesAStoreThatRestartsClean kills wharf with
// SIGKILL at random moments while clients pull, many times over, then
// checks that every image pulls with correct digests and that `wharf
// verify` finds nothing wrong.
func TestCrashAtAnyMomentLeavesAStoreThatRestartsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wharf as a process and kills it repeatedly")
	}
	bin := buildWharf(t)
	reg := upstreamtest.NewRegistry(t)
	// Pace the upstream a little so kills land in the middle of fills.
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{BytesPerSec: 8 << 20} })
	const images = 6
	want := map[string]string{}
	for i := 0; i < images; i++ {
		ref := fmt.Sprintf("app/crash%d:v1", i)
		want[ref] = upstreamtest.Push(t, reg, ref, upstreamtest.RandomImage(t, 3, 256<<10, upstreamtest.DockerManifest)).Digest.String()
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	deadline := time.Now().Add(40 * time.Second)
	rounds := 0
	for ; rounds < 12 && time.Now().Before(deadline); rounds++ {
		p := startWharfProc(t, bin, dir, faulty.URL)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for c := 0; c < 6; c++ {
			wg.Add(1)
			go func(ref string) {
				defer wg.Done()
				img, err := remote.Image(mustRef(t, p.addr+"/"+ref), remote.WithContext(ctx))
				if err == nil { // errors are expected: the server dies under us
					if ls, err := img.Layers(); err == nil {
						for _, l := range ls {
							if rc, err := l.Compressed(); err == nil {
								drain(rc)
							}
						}
					}
				}
			}(fmt.Sprintf("app/crash%d:v1", rng.Intn(images)))
		}
		time.Sleep(time.Duration(20+rng.Intn(400)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
	}
	t.Logf("%d rounds of SIGKILL during concurrent pulls", rounds)

	p := startWharfProc(t, bin, dir, faulty.URL)
	for ref, d := range want {
		m := &mirror{Host: p.addr}
		if got := pullDigest(t, m, ref); got != d {
			t.Errorf("%s after crashes: %s, want %s", ref, got, d)
		}
	}
	p.stop(t)
	out, err := exec.Command(bin, "verify", "--data", dir).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(" 0 corrupt")) {
		t.Fatalf("wharf verify after crashes: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(entries) != 0 {
		t.Errorf("temp files survive a clean restart: %d", len(entries))
	}
}
