package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// harness holds one run: its parameters, its processes, what it measured.
type harness struct {
	p               params
	bin, work, docs string
	procs           []*proc
	t0              time.Time
	upstream, relay *server
	relayControl    string
	img             images
	run             record
	seq             int // numbers data directories and logs
	tools           clusterTools
	s3              *s3Server // MinIO, when the cluster scenarios run
}

// server is one HTTP endpoint under test and the process behind it (none
// for "direct", which is the relay itself).
type server struct {
	kind  string // wharf, distribution, baseline, direct, cluster, replica
	url   string
	proc  *proc
	data  string // data directory, removed by stop
	debug string // pprof address (wharf)
	// A cluster is HAProxy (proc) and its replicas (extra, stopped with
	// it) on a MinIO that outlives it (also): all of them count in its
	// CPU time and peak RSS.
	extra, also []*proc
}

func (s *server) stop() {
	if s.proc != nil {
		s.proc.stop()
	}
	for i := len(s.extra) - 1; i >= 0; i-- {
		s.extra[i].stop()
	}
	if s.data != "" {
		os.RemoveAll(s.data)
	}
}

// all is every process whose work serves the server's requests.
func (s *server) all() []*proc {
	var ps []*proc
	if s.proc != nil {
		ps = append(ps, s.proc)
	}
	return append(append(ps, s.extra...), s.also...)
}

// cpu is the CPU time of all of the server's processes.
func (s *server) cpu() (time.Duration, error) {
	var sum time.Duration
	for _, p := range s.all() {
		t, err := cpuTime(p.pid())
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// peakRSS is the largest high-water mark among the server's own
// processes (for a cluster: its largest replica, or HAProxy; not the
// MinIO it shares with other clusters).
func (s *server) peakRSS() (int64, error) {
	var most int64
	for _, p := range s.all()[:len(s.all())-len(s.also)] {
		v, err := peakRSS(p.pid())
		if err != nil {
			return 0, err
		}
		most = max(most, v)
	}
	return most, nil
}

// distributionConfig is the registry's YAML: filesystem storage, the
// in-memory blob descriptor cache of the stock config, no access log (wharf
// runs at warn level, which logs no access lines either) and, for the
// mirror, proxy mode towards remote.
func distributionConfig(root, addr, remote string) string {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: wharf-bench-not-a-secret
health:
  storagedriver:
    enabled: false
`, root, addr)
	if remote != "" {
		cfg += fmt.Sprintf("proxy:\n  remoteurl: %s\n", remote)
	}
	return cfg
}

// distributionEnv keeps distribution's OpenTelemetry from exporting
// traces to a collector that is not there.
var distributionEnv = []string{"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"}

func (h *harness) next(name string) string {
	h.seq++
	return fmt.Sprintf("%s-%d", name, h.seq)
}

// startDistribution starts the registry binary; with remote it is a
// pull-through mirror of remote.
func (h *harness) startDistribution(ctx context.Context, name, remote string) (*server, error) {
	name = h.next(name)
	root := filepath.Join(h.work, "data", name)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(h.work, "data", name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(distributionConfig(root, addr, remote)), 0o644); err != nil {
		return nil, err
	}
	p, err := h.startProc(name, distributionEnv, filepath.Join(h.bin, "registry"), "serve", cfgFile)
	if err != nil {
		return nil, err
	}
	s := &server{kind: "distribution", url: "http://" + addr, proc: p, data: root}
	if err := waitHTTP(ctx, p, s.url+"/v2/"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startWharf starts wharf on an empty data directory, mirroring the
// upstream through the relay, with pprof on its own listener.
func (h *harness) startWharf(ctx context.Context, name string) (*server, error) {
	return h.startWharfBin(ctx, name, "wharf")
}

// startWharfBin starts bin/<kind> (wharf, or wharf-base: another
// revision) as startWharf does.
func (h *harness) startWharfBin(ctx context.Context, name, kind string) (*server, error) {
	name = h.next(name)
	root := filepath.Join(h.work, "data", name)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debug, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := h.startProc(name, nil, filepath.Join(h.bin, kind), "serve",
		"--listen", addr, "--upstream", h.relay.url, "--data", root,
		"--tag-ttl", "1h", "--log-level", "warn", "--debug-listen", debug)
	if err != nil {
		return nil, err
	}
	s := &server{kind: kind, url: "http://" + addr, proc: p, data: root, debug: debug}
	if err := waitHTTP(ctx, p, s.url+"/v2/"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (h *harness) startMirror(ctx context.Context, kind, name string) (*server, error) {
	switch kind {
	case "wharf":
		return h.startWharf(ctx, name)
	case kindBase:
		return h.startWharfBin(ctx, name, kindBase)
	case "cluster":
		c, err := h.startCluster(ctx, name)
		if err != nil {
			return nil, err
		}
		return c.lb, nil
	}
	return h.startDistribution(ctx, name, h.relay.url)
}

// startRelay puts the paced relay in front of the upstream.
func (h *harness) startRelay(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ctl, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := h.startProc("relay", nil, filepath.Join(h.bin, "relay"),
		"--listen", addr, "--target", h.upstream.url[len("http://"):], "--control", ctl, "--rate", strconv.FormatInt(h.p.Rate, 10),
		"--rtt", "0", "--conn-rate", "0") // the plain link; setWAN turns the WAN's on and off
	if err != nil {
		return err
	}
	h.relay = &server{kind: "direct", url: "http://" + addr, proc: p}
	h.relayControl = "http://" + ctl
	return waitHTTP(ctx, p, h.relay.url+"/v2/")
}

// setRate changes the link's rate; 0 is unlimited.
func (h *harness) setRate(ctx context.Context, bps int64) error {
	return h.controlRelay(ctx, "/rate?bps="+strconv.FormatInt(bps, 10))
}

// setWAN turns the WAN link's round-trip time and per-connection rate on
// (p.RTT, p.ConnRate) or off (none, unlimited), beside the shared rate.
func (h *harness) setWAN(ctx context.Context, on bool) error {
	rtt, bps := time.Duration(0), int64(0)
	if on {
		rtt, bps = h.p.RTT, h.p.ConnRate
	}
	if err := h.controlRelay(ctx, "/rtt?d="+rtt.String()); err != nil {
		return err
	}
	return h.controlRelay(ctx, "/connrate?bps="+strconv.FormatInt(bps, 10))
}

// controlRelay POSTs one setting to the relay's control API.
func (h *harness) controlRelay(ctx context.Context, query string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.relayControl+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("relay %s: %s", query, resp.Status)
	}
	return nil
}

// relayStats are the relay's counters: bytes from and to the upstream,
// connections made to it.
type relayStats struct{ Down, Up, Conns int64 }

func (h *harness) relayStats(ctx context.Context) (relayStats, error) {
	var st relayStats
	err := getJSON(ctx, h.relayControl+"/stats", &st)
	return st, err
}

// upstreamBytes is what the relay has carried from the upstream so far.
func (h *harness) upstreamBytes(ctx context.Context) (int64, error) {
	st, err := h.relayStats(ctx)
	return st.Down, err
}

// startBaseline serves blobs from dir (wharf's blob files) and the given
// manifests from memory.
func (h *harness) startBaseline(ctx context.Context, blobs string, manifests map[string]string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"--listen", addr, "--blobs", blobs}
	for ref, file := range manifests {
		args = append(args, "--manifest", ref+"="+file)
	}
	p, err := h.startProc(h.next("baseline"), nil, filepath.Join(h.bin, "baseline"), args...)
	if err != nil {
		return nil, err
	}
	s := &server{kind: "baseline", url: "http://" + addr, proc: p}
	return s, waitHTTP(ctx, p, s.url+"/v2/")
}
