package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/haproxytest"
)

// haproxyLB is HAProxy in front of a test cluster, in the foreground
// (-db), listening on 127.0.0.1 only, killed in t.Cleanup.
type haproxyLB struct {
	Addr    string // the registry frontend, 127.0.0.1:port
	stats   string // the stats listener, read for the servers' health
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startHAProxy starts HAProxy (the binary bin) in front of replicas and
// returns once it sees every one of them up.
func startHAProxy(t *testing.T, bin string, replicas []*clusterReplica) *haproxyLB {
	t.Helper()
	lb := &haproxyLB{Addr: freeAddr(t), stats: freeAddr(t), exited: make(chan struct{})}
	o := haproxytest.Options{Listen: lb.Addr, Stats: lb.stats, CheckEvery: 250 * time.Millisecond}
	for _, r := range replicas {
		o.Servers = append(o.Servers, r.Addr)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	clusterWriteFile(t, cfg, haproxytest.Config(o))
	if out, err := exec.Command(bin, "-c", "-q", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	lb.logPath = filepath.Join(dir, "haproxy.log")
	log, err := os.Create(lb.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	lb.cmd = exec.Command(bin, "-db", "-f", cfg)
	lb.cmd.Stdout, lb.cmd.Stderr = log, log
	if err := lb.cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	go func() {
		lb.cmd.Wait()
		close(lb.exited)
	}()
	t.Cleanup(func() {
		lb.cmd.Process.Signal(syscall.SIGKILL)
		<-lb.exited
		if t.Failed() {
			b, _ := os.ReadFile(lb.logPath)
			t.Logf("haproxy's output:\n%s", b)
		}
	})
	want := map[string]string{}
	for _, r := range replicas {
		want[r.Name] = "UP"
	}
	lb.waitStatus(t, want)
	return lb
}

// status returns each server's state as HAProxy's stats page says it:
// "UP", "DOWN", or a transition such as "UP 1/2".
func (lb *haproxyLB) status() (map[string]string, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + lb.stats + "/;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy stats: %v: %q", err, body)
	}
	px, sv, st := slices.Index(rows[0], "pxname"), slices.Index(rows[0], "svname"), slices.Index(rows[0], "status")
	if px < 0 || sv < 0 || st < 0 {
		return nil, fmt.Errorf("haproxy stats without pxname, svname or status: %q", rows[0])
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > st && row[px] == "wharf" && row[sv] != "BACKEND" {
			out[row[sv]] = row[st]
		}
	}
	return out, nil
}

// waitStatus waits until HAProxy's state of each server named in want is
// the one given, for 20 s at most.
func (lb *haproxyLB) waitStatus(t *testing.T, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := lb.status()
		ok := err == nil
		for name, st := range want {
			ok = ok && got[name] == st
		}
		if ok {
			return
		}
		select {
		case <-lb.exited:
			b, _ := os.ReadFile(lb.logPath)
			t.Fatalf("haproxy exited:\n%s", b)
		case <-time.After(50 * time.Millisecond): // polling its stats: HAProxy sends no event
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's servers are %v (%v) after 20s, want %v", got, err, want)
		}
	}
}
