package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// stormWharf is bin/wharf serve as a child process for the storm, its log
// in a file, its metrics read through /metrics with the storm's user.
type stormWharf struct {
	cmd      *exec.Cmd
	URL      string
	logPath  string
	user     string
	password string
	scrape   *http.Client
}

// startStormWharf starts bin with args after serve's own --listen, --data
// and --htpasswd, and waits for /healthz.
func startStormWharf(t *testing.T, bin, dir string, args ...string) *stormWharf {
	t.Helper()
	w := &stormWharf{user: "storm", password: "storm-password", logPath: filepath.Join(t.TempDir(), "wharf.log"),
		// No keep-alive: the scrape's connection must not count in the
		// goroutines and descriptors it measures.
		scrape: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}}
	// The lowest bcrypt cost: a thousand clients log in at once, and the
	// storm is about the mirror, not about bcrypt.
	hash, err := bcrypt.GenerateFromPassword([]byte(w.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(w.user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	addr := freeAddr(t)
	w.URL = "http://" + addr
	w.cmd = exec.Command(bin, append([]string{"serve", "--listen", addr, "--data", dir, "--htpasswd", htpasswd}, args...)...)
	w.cmd.Stdout, w.cmd.Stderr = logFile, logFile
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := w.scrape.Get(w.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf did not start: %v\n%s", err, w.log(t))
		}
		time.Sleep(50 * time.Millisecond) // polling for the listener: there is no event to wait on
	}
}

// stop ends wharf with SIGTERM, as an operator would, and waits.
func (w *stormWharf) stop(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGTERM)
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("wharf exited with %v", err)
	}
}

func (w *stormWharf) log(t *testing.T) string {
	b, err := os.ReadFile(w.logPath)
	if err != nil {
		t.Errorf("wharf log: %v", err)
	}
	return string(b)
}

// panics returns the log lines that tell of a panic or a runtime crash.
func (w *stormWharf) panics(t *testing.T) []string {
	f, err := os.Open(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, sign := range []string{"handler panicked", "panic:", "http: panic serving", "fatal error:", "DATA RACE"} {
			if strings.Contains(l, sign) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// metrics reads the named samples (no labels) from /metrics.
func (w *stormWharf) metrics(names ...string) (map[string]float64, error) {
	req, err := http.NewRequest(http.MethodGet, w.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(w.user, w.password)
	resp, err := w.scrape.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && want[f[0]] {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, err
			}
			got[f[0]] = v
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", n)
		}
	}
	return got, sc.Err()
}

// idleFigures are what "idle again" is judged on.
type idleFigures struct {
	goroutines, fds float64
	settled         time.Duration // how long it took to get there
}

// waitIdle polls /metrics until no fill is under way and the goroutines
// and open descriptors are within 10 % of base (or, with no base, have
// not moved for two seconds), or until deadline; it returns the last
// figures either way, for the caller to judge.
func (w *stormWharf) waitIdle(t *testing.T, base *idleFigures, deadline time.Duration) idleFigures {
	t.Helper()
	start := time.Now()
	var last idleFigures
	stable := 0
	for {
		m, err := w.metrics("go_goroutines", "process_open_fds", "wharf_fills_in_flight")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		cur := idleFigures{goroutines: m["go_goroutines"], fds: m["process_open_fds"], settled: time.Since(start)}
		if cur.goroutines == last.goroutines && cur.fds == last.fds {
			stable++
		} else {
			stable = 0
		}
		last = cur
		quiet := m["wharf_fills_in_flight"] == 0
		switch {
		case quiet && base != nil && within(cur.goroutines, base.goroutines) && within(cur.fds, base.fds):
			return cur
		case quiet && base == nil && stable >= 8:
			return cur
		case time.Since(start) > deadline:
			return cur
		}
		time.Sleep(250 * time.Millisecond) // the sampling period of a poll on metrics
	}
}

// within is the storm's tolerance: 10 % over the baseline.
func within(v, base float64) bool { return v <= base*1.1 }

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func (w *stormWharf) peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
