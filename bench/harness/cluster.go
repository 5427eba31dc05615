package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharf-mirror/wharf/haproxytest"
)

// The cluster of issue 13, as an operator runs it on one machine: three
// wharf replicas (bin/wharf serve, each with its own data directory) on
// one MinIO, asking each other over their peer listeners, behind HAProxy
// round-robin. Everything listens on 127.0.0.1.
//
//	wharf bench pull ──▶ HAProxy ──▶ replica 1 ─┐ peer listeners, cluster secret
//	                             ──▶ replica 2 ─┼──────────────────────────────┐
//	                             ──▶ replica 3 ─┘                              │
//	                                   │ storage.s3 (one bucket)   upstream: the relay
//	                                   ▼                                       ▼
//	                                 MinIO                                   relay ──▶ upstream
//
// One MinIO serves the whole run; each cluster gets a bucket of its own,
// so a cold cluster starts with nothing stored anywhere.

// clusterReplicas is how many replicas a cluster has.
const clusterReplicas = 3

// clusterTools are the programs the cluster scenarios need beyond
// bench/bin; with any missing, run.sh leaves them out and says so.
type clusterTools struct {
	MinIO, HAProxy, S3Tool string
}

func (t clusterTools) ok() bool { return t.MinIO != "" && t.HAProxy != "" && t.S3Tool != "" }

// s3Server is the MinIO process the clusters share.
type s3Server struct {
	proc       *proc
	endpoint   string
	user       string
	keyFile    string // the root password, for s3tool
	key        string
	bucketSeen int
}

// startS3 starts MinIO on a data directory in the work directory.
func (h *harness) startS3(ctx context.Context) error {
	dir := filepath.Join(h.work, "minio")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	console, err := freeAddr()
	if err != nil {
		return err
	}
	key := randomHex(16)
	keyFile := filepath.Join(dir, "root-password")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		return err
	}
	env := []string{"MINIO_ROOT_USER=wharf-bench", "MINIO_ROOT_PASSWORD=" + key, "MINIO_BROWSER=off", "MINIO_UPDATE=off"}
	p, err := h.startProc("minio", env, h.tools.MinIO, "server", "--quiet", "--address", addr,
		"--console-address", console, filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	h.s3 = &s3Server{proc: p, endpoint: "http://" + addr, user: "wharf-bench", key: key, keyFile: keyFile}
	return waitHTTP(ctx, p, h.s3.endpoint+"/minio/health/live")
}

// makeBucket creates a bucket of its own for one cluster.
func (h *harness) makeBucket(ctx context.Context, name string) error {
	out, err := exec.CommandContext(ctx, h.tools.S3Tool, "mb", h.s3.endpoint, name, h.s3.user, h.s3.keyFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make bucket %s: %w: %s", name, err, out)
	}
	return nil
}

// replicaConfig is one replica's config file: the content in the bucket,
// the peers by their 127.0.0.1 peer addresses, the relay as the upstream,
// and the same settings as the single node's flags (tag TTL 1h, warn).
func replicaConfig(listen, debug, dir, relay string, s3 *s3Server, bucket, self string, peers []string, secret string) string {
	return fmt.Sprintf(`listen: %q
upstream:
  url: %q
  tagTTL: 1h
storage:
  dir: %q
  s3:
    endpoint: %q
    bucket: %q
    pathStyle: true
    accessKey: %q
    secretKey: %q
cluster:
  listen: %q
  self: %q
  peers: [%s]
  secret: %q
log:
  level: warn
debug:
  listen: %q
`, listen, relay, dir, s3.endpoint, bucket, s3.user, s3.key, self, self, quoteList(peers), secret, debug)
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, e := range s {
		q[i] = fmt.Sprintf("%q", e)
	}
	return strings.Join(q, ", ")
}

// haproxyConfig balances the replicas round-robin, as deploy/cluster's
// does, with health checks on /healthz: haproxytest's, which e2e's
// cluster proofs run too.
func haproxyConfig(listen string, replicas []string) string {
	return haproxytest.Config(haproxytest.Options{Listen: listen, Servers: replicas, CheckEvery: 2 * time.Second})
}

// wharfCluster is a running cluster: HAProxy's address is lb.url.
type wharfCluster struct {
	lb       *server   // kind "cluster": HAProxy, the replicas and MinIO in its CPU
	replicas []*server // kind "replica": each replica's client listener
	peers    []string  // each replica's peer address, in the same order
	secret   string
}

// startCluster starts three replicas on a fresh bucket and HAProxy in
// front, and returns once every replica sees every member up (before
// that, a replica would rank keys without a peer and fetch them itself).
func (h *harness) startCluster(ctx context.Context, name string) (*wharfCluster, error) {
	name = h.next(name)
	root := filepath.Join(h.work, "data", name)
	h.s3.bucketSeen++
	bucket := fmt.Sprintf("bench-%d", h.s3.bucketSeen)
	if err := h.makeBucket(ctx, bucket); err != nil {
		return nil, err
	}
	c := &wharfCluster{secret: randomHex(16)}
	listens := make([]string, clusterReplicas)
	for i := range clusterReplicas {
		var err error
		if listens[i], err = freeAddr(); err != nil {
			return nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.peers = append(c.peers, p)
	}
	lb := &server{kind: "cluster", data: root, also: []*proc{h.s3.proc}}
	c.lb = lb
	fail := func(err error) (*wharfCluster, error) {
		lb.stop()
		return nil, err
	}
	for i := range clusterReplicas {
		rname := fmt.Sprintf("%s-r%d", name, i+1)
		dir := filepath.Join(root, fmt.Sprintf("r%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		debug, err := freeAddr()
		if err != nil {
			return fail(err)
		}
		cfg := filepath.Join(root, fmt.Sprintf("r%d.yaml", i+1))
		text := replicaConfig(listens[i], debug, dir, h.relay.url, h.s3, bucket, c.peers[i], c.peers, c.secret)
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			return fail(err)
		}
		p, err := h.startProc(rname, nil, filepath.Join(h.bin, "wharf"), "serve", "--config", cfg)
		if err != nil {
			return fail(err)
		}
		lb.extra = append(lb.extra, p)
		c.replicas = append(c.replicas, &server{kind: "replica", url: "http://" + listens[i], proc: p, debug: debug})
	}
	for _, r := range c.replicas {
		if err := waitHTTP(ctx, r.proc, r.url+"/v2/"); err != nil {
			return fail(err)
		}
	}
	for _, r := range c.replicas {
		if err := waitMembersUp(ctx, r, clusterReplicas); err != nil {
			return fail(err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	cfg := filepath.Join(root, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, listens)), 0o644); err != nil {
		return fail(err)
	}
	p, err := h.startProc(name+"-haproxy", nil, h.tools.HAProxy, "-db", "-f", cfg)
	if err != nil {
		return fail(err)
	}
	lb.proc, lb.url = p, "http://"+addr
	if err := waitHTTP(ctx, p, lb.url+"/v2/"); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitMembersUp polls a replica's wharf_cluster_members_up until it
// reaches n.
func waitMembersUp(ctx context.Context, r *server, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	var last float64
	for time.Now().Before(deadline) {
		m, err := scrape(ctx, r.url+"/metrics")
		if err == nil {
			if last = m.sum("wharf_cluster_members_up", ""); last >= float64(n) {
				return nil
			}
		}
		if r.proc.exited() {
			return fmt.Errorf("%s exited: %v (see its log)", r.proc.name, r.proc.err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s sees %v members up, not %d, after 30s", r.proc.name, last, n)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
