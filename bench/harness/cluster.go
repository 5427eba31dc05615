package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/haproxytest"
)

// The cluster scenario (issue 13), run once after the rounds: three wharf
// replicas on one bucket of a MinIO, behind HAProxy round-robin, mirroring
// the upstream through the same paced relay:
//
//	wharf bench pull ──▶ HAProxy ──▶ wharf ×3 ──peer──▶ owner
//	                                  └──▶ MinIO ◀──┘   └──▶ relay ──▶ upstream
//
// It measures a cold pull by ClusterClients clients at once through
// HAProxy (its time, and the upstream's bytes over the image's), the same
// pull warm through HAProxy against one of the replicas asked directly
// (the cluster's throughput against one replica's on the same machine),
// and the latency a peer hop adds to a hit: manifests by digest asked of
// a replica that does not hold them (its owner does), then again once it
// does.

// Scenarios and targets of the cluster's samples.
const (
	scClusterCold = "cluster-cold" // + the number of clients
	scClusterWarm = "cluster-warm"
	scPeerHop     = "peer-hop" // manifest by digest: first ask (a hop), then a local hit
	tgCluster     = "cluster"  // through HAProxy
	tgReplica     = "replica"  // one replica asked directly
	clusterSize   = 3
	hopManifests  = 60 // tiny images pushed for the peer-hop latency
)

// clusterRig is the running cluster.
type clusterRig struct {
	s3       *s3test.Server
	replicas []*server
	peers    []string // their peer addresses, also their names in the ranking
	secret   string
	lb       *server
}

// clusterScenario runs the cluster's measurements, or says why it cannot
// (no MinIO, no HAProxy) and returns nil: the rest of the report stands
// without them.
func (h *harness) clusterScenario(ctx context.Context) error {
	haproxy, err := haproxytest.Binary()
	if err != nil {
		h.logf("cluster scenario skipped: %v", err)
		return nil
	}
	srv, err := s3test.Start(false)
	if errors.Is(err, s3test.ErrNoServer) {
		h.logf("cluster scenario skipped: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer srv.Stop()
	hop, err := h.seedHop(ctx)
	if err != nil {
		return err
	}
	rig, err := h.startCluster(ctx, srv, haproxy)
	if err != nil {
		return err
	}
	defer rig.stop()
	n := h.p.Concurrent[len(h.p.Concurrent)-1]
	k := strconv.Itoa(n)
	h.logf("cluster: %d replicas behind HAProxy, %d clients", clusterSize, n)

	before, err := h.upstreamBytes(ctx)
	if err != nil {
		return err
	}
	r, err := h.load(ctx, rig.lb.url, "--clients", k, "--pulls", k, h.img.app)
	if err != nil {
		return fmt.Errorf("cluster cold: %w", err)
	}
	after, err := h.upstreamBytes(ctx)
	if err != nil {
		return err
	}
	cold := scClusterCold + k
	h.add(cold, tgCluster, 1, "seconds", r.Seconds)
	h.add(cold, tgCluster, 1, "upstream", float64(after-before))
	h.logf("  %-14s %-8s %6.2fs  upstream %s (%.3f × the image)", cold, tgCluster, r.Seconds, size(after-before), float64(after-before)/float64(h.img.appBytes))

	warm := scClusterWarm + k
	for _, t := range []*server{rig.lb, rig.replicas[0]} {
		r, err := h.load(ctx, t.url, "--clients", k, "--pulls", k, h.img.app)
		if err != nil {
			return fmt.Errorf("cluster warm (%s): %w", t.kind, err)
		}
		h.add(warm, t.kind, 1, "seconds", r.Seconds)
		h.add(warm, t.kind, 1, "bytes_per_s", r.BytesPerSecond)
		h.logf("  %-14s %-8s %6.2fs  %s/s", warm, t.kind, r.Seconds, size(int64(r.BytesPerSecond)))
	}
	return h.peerHop(ctx, rig, hop)
}

// seedHop pushes the tiny images of the peer-hop measure to the upstream
// and returns their references by digest.
func (h *harness) seedHop(ctx context.Context) ([]string, error) {
	host := h.upstream.url[len("http://"):]
	var refs []string
	for i := range hopManifests {
		img, err := seededImage(uint64(1000+i), 1, 1<<10, "amd64")
		if err != nil {
			return nil, err
		}
		repo := fmt.Sprintf("bench/hop%d", i)
		ref, err := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
		if err != nil {
			return nil, err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("push %s: %w", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		refs = append(refs, repo+"@"+d.String())
	}
	return refs, nil
}

// peerHop asks replica 0 for the tiny images' manifests by digest, so
// that their owners hold them, then asks replica 1 for those replica 1
// does not own, twice: the first time each is a hop to its owner (or a
// read of the shared store), the second a local hit. The hop's cost is
// the difference of the medians.
func (h *harness) peerHop(ctx context.Context, rig *clusterRig, refs []string) error {
	warm := append([]string{"--manifests-only", "--clients", "1", "--pulls", strconv.Itoa(len(refs))}, refs...)
	if _, err := h.load(ctx, rig.replicas[0].url, warm...); err != nil {
		return fmt.Errorf("peer hop, warming: %w", err)
	}
	cl, err := cluster.New(cluster.Options{Self: rig.peers[1], Peers: rig.peers, Secret: rig.secret})
	if err != nil {
		return err
	}
	var elsewhere []string
	for _, ref := range refs {
		_, d, _ := strings.Cut(ref, "@")
		if cl.Owner(d).Addr != rig.peers[1] {
			elsewhere = append(elsewhere, ref)
		}
	}
	cl.Close()
	args := append([]string{"--manifests-only", "--clients", "1", "--pulls", strconv.Itoa(len(elsewhere))}, elsewhere...)
	for _, pass := range []string{"hop", "local"} {
		r, err := h.load(ctx, rig.replicas[1].url, args...)
		if err != nil {
			return fmt.Errorf("peer hop, %s: %w", pass, err)
		}
		p50 := r.Latency["manifest"].P50ms
		h.add(scPeerHop, pass, 1, "p50_ms", p50)
		h.logf("  %-14s %-8s p50 %.3f ms over %d manifests", scPeerHop, pass, p50, len(elsewhere))
	}
	return nil
}

// startCluster starts the replicas on a new bucket of srv, then HAProxy.
func (h *harness) startCluster(ctx context.Context, srv *s3test.Server, haproxy string) (*clusterRig, error) {
	bucket, err := srv.NewBucket(ctx)
	if err != nil {
		return nil, err
	}
	rig := &clusterRig{s3: srv, secret: rand.Text()}
	dir := filepath.Join(h.work, "data", h.next("cluster"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addrs := make([]string, clusterSize)
	for i := range clusterSize {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		rig.peers = append(rig.peers, p)
	}
	for i := range clusterSize {
		conf := filepath.Join(dir, fmt.Sprintf("wharf-%d.yaml", i))
		data := filepath.Join(dir, fmt.Sprintf("data-%d", i))
		if err := os.WriteFile(conf, []byte(replicaConfig(addrs[i], data, h.relay.url, srv, bucket, rig.peers, i, rig.secret)), 0o600); err != nil {
			return nil, err
		}
		p, err := h.startProc(h.next("replica"), nil, filepath.Join(h.bin, "wharf"), "serve", "--config", conf)
		if err != nil {
			return nil, err
		}
		s := &server{kind: tgReplica, url: "http://" + addrs[i], proc: p, data: data}
		rig.replicas = append(rig.replicas, s)
		if err := waitHTTP(ctx, p, s.url+"/v2/"); err != nil {
			rig.stop()
			return nil, err
		}
	}
	if rig.lb, err = h.startHAProxy(ctx, haproxy, dir, addrs); err != nil {
		rig.stop()
		return nil, err
	}
	return rig, nil
}

func (rig *clusterRig) stop() {
	if rig.lb != nil {
		rig.lb.stop()
	}
	for _, r := range rig.replicas {
		r.stop()
	}
}

// replicaConfig is replica i's config file: wharf's bench settings (as
// startWharf's flags), its own listeners and data directory, the shared
// bucket, peers and secret.
func replicaConfig(addr, data, upstream string, srv *s3test.Server, bucket string, peers []string, i int, secret string) string {
	return fmt.Sprintf(`listen: %q
upstream:
  url: %s
  tagTTL: 1h
storage:
  dir: %q
  s3:
    endpoint: %s
    bucket: %s
    region: us-east-1
    pathStyle: true
    accessKey: %s
    secretKey: %q
log:
  level: warn
cluster:
  listen: %q
  self: %q
  peers: [%s]
  secret: %q
`, addr, upstream, data, srv.Endpoint, bucket, srv.User, srv.Key, peers[i], peers[i], strings.Join(peers, ", "), secret)
}

// startHAProxy runs HAProxy in the foreground in front of addrs.
func (h *harness) startHAProxy(ctx context.Context, bin, dir string, addrs []string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	conf := haproxytest.Config(haproxytest.Options{Listen: addr, Servers: addrs, CheckEvery: time.Second})
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := h.startProc(h.next("haproxy"), nil, bin, "-db", "-f", cfg)
	if err != nil {
		return nil, err
	}
	s := &server{kind: tgCluster, url: "http://" + addr, proc: p}
	return s, waitHTTP(ctx, p, s.url+"/v2/")
}

// clusterReport is the report's section on the cluster scenario, empty
// when it did not run.
func (h *harness) clusterReport() string {
	clients := h.p.Concurrent[len(h.p.Concurrent)-1]
	n := strconv.Itoa(clients)
	cold, ok := h.median(scClusterCold+n, tgCluster, "seconds")
	if !ok {
		return "\n## Several replicas (issue 13)\n\nNot measured: the run found no MinIO or no HAProxy (see its log).\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Several replicas (issue 13)\n\n")
	fmt.Fprintf(&b, "%d wharf replicas on one MinIO bucket behind HAProxy round-robin, on this machine, after the rounds (one run, not medians). "+
		"The replicas, HAProxy, MinIO, the relay, the upstream and the clients share its %d cores: on one machine a cluster buys one upstream fetch per blob and a replica's death survived, not throughput.\n\n",
		clusterSize, runtime.NumCPU())
	b.WriteString("| Figure | Measured | Target |\n|---|---:|---:|\n")
	up := h.med(scClusterCold+n, tgCluster, "upstream") / float64(h.run.AppBytes)
	single := "—"
	if v, ok := h.median(coldN(clients), "wharf", "seconds"); ok {
		single = fmt.Sprintf("%.2f s", v)
	}
	fmt.Fprintf(&b, "| Cold pull, %s clients at once, through HAProxy (one wharf on its disk: %s) | %.2f s | — |\n", n, single, cold)
	fmt.Fprintf(&b, "| Bytes from the upstream ÷ the image, that cold pull (relay's count, headers included) | %.3f | ≤ 1.02 |\n", up)
	wc, wr := h.med(scClusterWarm+n, tgCluster, "bytes_per_s"), h.med(scClusterWarm+n, tgReplica, "bytes_per_s")
	fmt.Fprintf(&b, "| Warm pull, %s clients at once: the cluster through HAProxy | %s/s | — |\n", n, size(int64(wc)))
	fmt.Fprintf(&b, "| Warm pull, %s clients at once: one replica asked directly | %s/s | — |\n", n, size(int64(wr)))
	fmt.Fprintf(&b, "| Throughput, cluster ÷ one replica | %.2f | — |\n", ratio(wc, wr))
	hop, local := h.med(scPeerHop, "hop", "p50_ms"), h.med(scPeerHop, "local", "p50_ms")
	fmt.Fprintf(&b, "| Manifest by digest held by another replica (its owner), p50 | %.3f ms | — |\n", hop)
	fmt.Fprintf(&b, "| The same manifest again, now held locally, p50 | %.3f ms | — |\n", local)
	fmt.Fprintf(&b, "| Latency the peer hop adds to a hit, p50 | %.3f ms | < 1 ms |\n", hop-local)
	return b.String()
}
