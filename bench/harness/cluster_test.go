package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/config"
)

func TestPercentile(t *testing.T) {
	v := []float64{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	for q, want := range map[float64]float64{0: 1, 0.5: 5, 0.9: 9, 0.91: 10, 1: 10} {
		if got := percentile(v, q); got != want {
			t.Errorf("q %v: %v, want %v", q, got, want)
		}
	}
	if v[0] != 9 {
		t.Error("percentile sorted its argument in place")
	}
	if !math.IsNaN(percentile(nil, 0.5)) {
		t.Error("no values: want NaN")
	}
}

func TestParseProm(t *testing.T) {
	m, err := parseProm(strings.NewReader(`# HELP wharf_peer_requests_total Requests.
# TYPE wharf_peer_requests_total counter
wharf_peer_requests_total{result="ok"} 12
wharf_peer_requests_total{result="failed_over"} 3
wharf_peer_requests_total_other{result="ok"} 100
wharf_cluster_members_up 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum("wharf_peer_requests_total", `result="ok"`); got != 12 {
		t.Errorf("ok: %v, want 12", got)
	}
	if got := m.sum("wharf_peer_requests_total", ""); got != 15 {
		t.Errorf("all results: %v, want 15", got)
	}
	if got := m.sum("wharf_cluster_members_up", ""); got != 3 {
		t.Errorf("members up: %v, want 3", got)
	}
	if _, err := parseProm(strings.NewReader("wharf_x{a=\"b\"} lots\n")); err == nil {
		t.Error("a value that is not a number: want an error")
	}
}

// TestRankPeersMatchesCluster checks the harness's copy of rendezvous
// ranking against package cluster's, which the replicas use: the peer-hop
// scenario sends each blob to a replica that is not its owner.
func TestRankPeersMatchesCluster(t *testing.T) {
	peers := []string{"127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"}
	// No check will mark a peer down during the test.
	c, err := cluster.New(cluster.Options{Self: peers[0], Peers: peers, Secret: "0123456789abcdef0123",
		CheckEvery: time.Hour, DownAfter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	owners := map[string]int{}
	for i := range 200 {
		key := "sha256:" + strings.Repeat("0", 60) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		var want []string
		for _, m := range c.Rank(key) {
			want = append(want, m.Addr)
		}
		got := rankPeers(peers, key)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("key %s: ranked %v, cluster ranks %v", key, got, want)
		}
		owners[got[0]]++
	}
	if len(owners) != len(peers) {
		t.Errorf("200 keys owned by %d of %d replicas", len(owners), len(peers))
	}
}

// TestReplicaConfigLoads loads a generated replica config as `wharf
// serve --config` does (strict keys, validation).
func TestReplicaConfigLoads(t *testing.T) {
	dir := t.TempDir()
	peers := []string{"127.0.0.1:40001", "127.0.0.1:40002", "127.0.0.1:40003"}
	s3 := &s3Server{endpoint: "http://127.0.0.1:9000", user: "wharf-bench", key: "0123456789abcdef"}
	file := filepath.Join(dir, "r1.yaml")
	text := replicaConfig("127.0.0.1:5000", "127.0.0.1:6060", dir, "http://127.0.0.1:7000", s3, "bench-1", peers[1], peers, "0123456789abcdef0123")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config", file}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Cluster.On() || cfg.Cluster.Self != peers[1] || len(cfg.Cluster.Peers) != 3 || cfg.Cluster.Listen != peers[1] {
		t.Errorf("cluster section: %+v", cfg.Cluster)
	}
	if cfg.Storage.S3.Bucket != "bench-1" || !cfg.Storage.S3.PathStyleOn() || cfg.Storage.S3.Endpoint != s3.endpoint {
		t.Errorf("storage.s3: %+v", cfg.Storage.S3)
	}
}

func TestHAProxyConfigListsEveryReplica(t *testing.T) {
	cfg := haproxyConfig("127.0.0.1:8000", []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"})
	for _, want := range []string{"bind 127.0.0.1:8000", "balance roundrobin", "option httpchk GET /healthz",
		"server r0 127.0.0.1:1\n", "server r1 127.0.0.1:2\n", "server r2 127.0.0.1:3\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", want, cfg)
		}
	}
}

// TestClusterReportRows checks the cluster's targets and rows against
// figures given by hand.
func TestClusterReportRows(t *testing.T) {
	h := &harness{p: params{Concurrent: []int{8, 32}, Cluster: true, PeerTags: 10}}
	h.run.AppBytes = 1000
	for round, up := range []float64{1010, 1500, 1015} { // median 1015
		h.add("cold32", "cluster", round, "upstream", up)
	}
	h.add("cold32", "cluster", 1, "seconds", 6)
	h.add("cold32", "wharf", 1, "seconds", 4)
	h.add(scPeerHop, hopLocal, 1, "p50_ms", 0.4)
	h.add(scPeerHop, hopVia, 1, "p50_ms", 1.9)
	h.add(scPeerHop, hopVia, 1, "p90_ms", 3.1)
	h.add(scPeerHop, hopVia, 1, "peer_ok_per_request", 1)
	h.add(scPeerHop, hopAgain, 1, "p50_ms", 1.2)
	h.add(scPeerHop, hopVia, 1, "s3_GET_per_request", 3)
	h.add(scPeerHop, hopVia, 1, "s3_PUT_per_request", 1.5)
	h.add(scPeerHop, hopVia, 1, "s3_mean_ms", 4.25)
	h.add(scClusterWarm, "cluster", 1, "bytes_per_s", 300<<20)
	h.add(scClusterWarm, "replica", 1, "bytes_per_s", 400<<20)
	h.add(scClusterWarm, "wharf", 1, "bytes_per_s", 500<<20)

	ts := h.clusterTargets()
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2", len(ts))
	}
	if up := ts[0]; math.Abs(up.measured-1.015) > 1e-9 || !up.met() {
		t.Errorf("upstream ÷ image: %v (met %v), want 1.015, met", up.measured, up.met())
	}
	if hop := ts[1]; math.Abs(hop.measured-1.5) > 1e-9 || hop.met() {
		t.Errorf("hop: %v ms (met %v), want 1.5, not met", hop.measured, hop.met())
	}

	var b strings.Builder
	h.clusterReport(&b)
	out := b.String()
	for _, want := range []string{
		"| Warm pull, 32 clients: throughput | 300 MiB/s | 400 MiB/s | 500 MiB/s | 0.75 | 0.60 |",
		"| Cold pull, 32 clients: wall time | 6.00 s | — | 4.00 s | — | 1.50 |",
		"| Via another replica, which asks the owner: GET /v2/…/manifests/<tag> | 1.90 ms | 3.10 ms |",
		"a manifest by tag via a replica that asks the tag's owner",
		"1.50 ms | ≤ 1.00 ms | **NOT MET** |",
		"| The same GET on the other replica once more (a hit there now) | 1.20 ms |",
		"The replicas counted 1.00 successful requests to a peer per GET via B",
		"per tag (over its four timed GETs), 3.00 GET, 1.50 PUT requests to the bucket, 4.2 ms each",
		"cores**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	h.p.Cluster = false
	b.Reset()
	h.clusterReport(&b)
	if !strings.Contains(b.String(), "Not measured in this run") {
		t.Errorf("without the cluster: %s", b.String())
	}
}
