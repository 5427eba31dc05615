package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/haproxytest"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The cluster proofs' parts, all real and started by the tests: a MinIO
// holding one bucket, a distribution registry (on disk: the in-memory
// driver takes minutes over a 64 MiB blob) behind upstreamtest.Faulty,
// which counts what the upstream is asked and sends, N bin/wharf serve
// processes sharing the bucket and the cluster secret, and HAProxy in
// front of them, round-robin without stickiness.
//
//	clients ─▶ HAProxy (127.0.0.1) ─▶ wharf r0, r1, r2 ─peer─▶ owner
//	                                     │ data dir each        │
//	                                     └──▶ MinIO bucket ◀────┘ ─▶ Faulty ─▶ registry

// clusterOpts shape a test cluster; the zero value is three replicas.
type clusterOpts struct {
	replicas int           // default 3
	tagTTL   time.Duration // default 1h
	extra    []string      // more serve flags for every replica
}

// wharfCluster is a running cluster and what it stands on.
type wharfCluster struct {
	S3       *s3test.Server
	Bucket   string
	Reg      *upstreamtest.Registry
	Up       *upstreamtest.Faulty
	Replicas []*clusterReplica
	LB       *haproxyLB
	secret   string
}

// clusterReplica is one wharf serve process. Its addresses, config and
// data directory stay the same across kill and restart.
type clusterReplica struct {
	Name    string // r0, r1, …: HAProxy's name for it
	Addr    string // the client listener, 127.0.0.1:port
	Peer    string // the peer listener, also its cluster.self
	Dir     string // its data directory (the local tier and its index)
	Conf    string // its config file
	bin     string
	extra   []string // serve's flags after --config
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// needCluster skips (or, with WHARF_S3_REQUIRED, fails) t unless the
// parts are here, and returns the HAProxy binary.
func needCluster(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the cluster proofs run MinIO, HAProxy and several wharf processes; skipped with -short")
	}
	bin, err := haproxytest.Binary()
	if err != nil {
		if os.Getenv("WHARF_S3_REQUIRED") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v; set WHARF_S3_REQUIRED=1 to fail instead of skipping", err)
	}
	return bin
}

// startCluster starts every part and returns once HAProxy sees every
// replica up and every replica sees the others.
func startCluster(t *testing.T, o clusterOpts) *wharfCluster {
	t.Helper()
	haproxy := needCluster(t)
	if o.replicas == 0 {
		o.replicas = 3
	}
	if o.tagTTL == 0 {
		o.tagTTL = time.Hour
	}
	bin := clusterWharfBinary(t)
	c := &wharfCluster{S3: s3test.Own(t)}
	c.Bucket = c.S3.Bucket(t)
	c.Reg = upstreamtest.NewRegistry(t, upstreamtest.WithDiskStorage())
	c.Up = upstreamtest.NewFaulty(t, c.Reg.URL)

	dir := t.TempDir()
	s3Key := filepath.Join(dir, "s3-secret-key")
	secret := filepath.Join(dir, "cluster-secret")
	clusterWriteFile(t, s3Key, c.S3.Key+"\n")
	c.secret = rand.Text() // 26 characters of base32
	clusterWriteFile(t, secret, c.secret+"\n")
	peers := make([]string, o.replicas)
	for i := range o.replicas {
		r := &clusterReplica{
			Name: fmt.Sprintf("r%d", i), Addr: freeAddr(t), Peer: freeAddr(t),
			Dir: filepath.Join(dir, fmt.Sprintf("data-%d", i)), bin: bin, extra: o.extra,
			Conf: filepath.Join(dir, fmt.Sprintf("wharf-%d.yaml", i)), logPath: filepath.Join(dir, fmt.Sprintf("wharf-%d.log", i)),
		}
		peers[i] = r.Peer
		c.Replicas = append(c.Replicas, r)
	}
	for _, r := range c.Replicas {
		clusterWriteFile(t, r.Conf, replicaConfig(r, c, o, peers, s3Key, secret))
		if err := os.MkdirAll(r.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			r.kill()
			if l := r.crashes(); len(l) > 0 {
				t.Errorf("%s's log tells of a crash:\n%s", r.Name, strings.Join(l, "\n"))
			}
		}
		if t.Failed() {
			for _, r := range c.Replicas {
				t.Logf("%s's log (last lines):\n%s", r.Name, r.logTail(40))
			}
		}
	})
	// Start them together: each one's start (opening the bucket, sweeping)
	// takes a moment, and the peers' first health checks are better made
	// against replicas that are there.
	var wg sync.WaitGroup
	errs := make([]error, len(c.Replicas))
	for i, r := range c.Replicas {
		wg.Go(func() { errs[i] = r.start() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.LB = startHAProxy(t, haproxy, c.Replicas)
	c.waitMembers(t)
	return c
}

// replicaConfig is r's config file: its own listeners and data
// directory; the bucket, upstream, peers and secret of the cluster.
func replicaConfig(r *clusterReplica, c *wharfCluster, o clusterOpts, peers []string, s3Key, secret string) string {
	return fmt.Sprintf(`listen: %q
upstream:
  url: %s
  tagTTL: %s
  timeout: 10s
  retries: 2
storage:
  dir: %q
  s3:
    endpoint: %s
    bucket: %s
    prefix: mirror
    region: us-east-1
    pathStyle: true
    accessKey: %s
    secretKeyFile: %q
    partSize: 5MiB
    timeout: 5s
log:
  level: info
cluster:
  listen: %q
  self: %q
  peers: [%s]
  secretFile: %q
`, r.Addr, c.Up.URL, o.tagTTL, r.Dir, c.S3.Endpoint, c.Bucket, c.S3.User, s3Key,
		r.Peer, r.Peer, strings.Join(peers, ", "), secret)
}

// clusterWharfBinary builds bin/wharf once per test binary: every
// cluster proof runs the same processes.
var clusterWharf struct {
	once sync.Once
	bin  string
	err  error
}

func clusterWharfBinary(t *testing.T) string {
	t.Helper()
	clusterWharf.once.Do(func() {
		dir, err := os.MkdirTemp("", "wharf-cluster-bin-*")
		if err != nil {
			clusterWharf.err = err
			return
		}
		clusterWharf.bin = filepath.Join(dir, "wharf")
		if out, err := exec.Command("go", "build", "-o", clusterWharf.bin, "../cmd/wharf").CombinedOutput(); err != nil {
			clusterWharf.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if clusterWharf.err != nil {
		t.Fatal(clusterWharf.err)
	}
	return clusterWharf.bin
}

// start runs the process and waits for its /healthz.
func (r *clusterReplica) start() error {
	log, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	fmt.Fprintf(log, "=== harness: start %s at %s\n", r.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, append([]string{"serve", "--config", r.Conf}, r.extra...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	return r.waitHealthy(exited)
}

// waitHealthy polls /healthz (there is no event for a listener that
// opens) until it answers 200, the process exits, or 30 s pass.
func (r *clusterReplica) waitHealthy(exited <-chan struct{}) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + r.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start:\n%s", r.Name, r.logTail(30))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("%s not healthy after 30s: %v\n%s", r.Name, err, r.logTail(30))
		}
	}
}

// kill sends SIGKILL (a crash: no shutdown, nothing flushed) and waits
// for the process to be gone. It does nothing to a replica not running.
func (r *clusterReplica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart starts a killed replica again on its addresses and config,
// with its data directory emptied first if wipe is set (a new machine).
func (r *clusterReplica) restart(t *testing.T, wipe bool) {
	t.Helper()
	r.kill()
	if wipe {
		if err := os.RemoveAll(r.Dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(r.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
}

// stop ends the replica as an operator would (SIGTERM) and waits.
func (r *clusterReplica) stop(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", r.Name)
		r.kill()
	}
	if st := cmd.ProcessState; st != nil && !st.Success() {
		t.Errorf("%s exited with %v\n%s", r.Name, st, r.logTail(30))
	}
}

// logTail returns the last n lines of the replica's log.
func (r *clusterReplica) logTail(n int) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// crashes returns the log's lines that tell of a panic or a runtime
// crash (a SIGKILL leaves none).
func (r *clusterReplica) crashes() []string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, sign := range []string{"panic:", "http: panic serving", "fatal error:", "DATA RACE"} {
			if strings.Contains(l, sign) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// metric reads one series ("name" or `name{label="v"}`) from the
// replica's /metrics; ok is false when it is not there.
func (r *clusterReplica) metric(series string) (v float64, ok bool, err error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + r.Addr + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if s, found := strings.CutPrefix(sc.Text(), series+" "); found {
			v, err := strconv.ParseFloat(s, 64)
			return v, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// waitMembers waits until every replica sees every replica up
// (wharf_cluster_members_up), so a pull does not start while one of
// them still ranks keys without the others.
func (c *wharfCluster) waitMembers(t *testing.T) {
	t.Helper()
	want := float64(len(c.Replicas))
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range c.Replicas {
		for {
			v, ok, err := r.metric("wharf_cluster_members_up")
			if ok && v == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %v members up after 30s (%v, found %v), want %v", r.Name, v, err, ok, want)
			}
			time.Sleep(20 * time.Millisecond) // polling a gauge: there is no event to wait on
		}
	}
}

// owner is the replica owning key (a digest, for a blob), as every
// replica ranks it while all are up: a Cluster of the same members and
// secret, closed at once, asked before any health check of its own.
func (c *wharfCluster) owner(t *testing.T, key string) *clusterReplica {
	t.Helper()
	peers := make([]string, len(c.Replicas))
	for i, r := range c.Replicas {
		peers[i] = r.Peer
	}
	cl, err := cluster.New(cluster.Options{Self: peers[0], Peers: peers, Secret: c.secret})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o := cl.Owner(key)
	for _, r := range c.Replicas {
		if r.Peer == o.Addr {
			return r
		}
	}
	t.Fatalf("the owner of %s is %s, no replica of %v", key, o.Addr, peers)
	return nil
}

// wantSpread fails t unless every replica served some of the blob GETs:
// the load balancer spread the pulls, so the upstream's count covers
// every replica's misses, not one replica's.
func (c *wharfCluster) wantSpread(t *testing.T) {
	t.Helper()
	for _, r := range c.Replicas {
		series := `wharf_http_requests_total{method="GET",route="blob",status="200"}`
		if n, _, err := r.metric(series); err != nil || n == 0 {
			t.Errorf("%s served %v blob GETs (%v): HAProxy did not spread the pulls", r.Name, n, err)
		}
	}
}

// sumMetric adds series over the replicas that are running.
func (c *wharfCluster) sumMetric(t *testing.T, series string) float64 {
	t.Helper()
	var sum float64
	for _, r := range c.Replicas {
		v, _, err := r.metric(series)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		sum += v
	}
	return sum
}

func clusterWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// proofContext bounds a whole proof, and ends with the test.
func proofContext(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	t.Cleanup(cancel)
	return ctx
}
