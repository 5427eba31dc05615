package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// clusterTargets evaluates issue 13's targets on the medians.
func (h *harness) clusterTargets() []target {
	n := slices.Max(h.p.Concurrent)
	return []target{{
		what:     fmt.Sprintf("Cluster, %d clients, same cold image through HAProxy: bytes from the upstream ÷ image size", n),
		measured: ratio(h.med(coldN(n), "cluster", "upstream"), float64(h.run.AppBytes)), limit: 1.02, atMost: true, unit: "×",
	}, {
		what:     "Latency a peer hop adds to a hit, p50: a manifest by tag via a replica that asks the tag's owner − the same GET as a hit on the owner",
		measured: h.med(scPeerHop, hopVia, "p50_ms") - h.med(scPeerHop, hopLocal, "p50_ms"), limit: 1, atMost: true, unit: "ms",
		note: fmt.Sprintf("%.2f peer requests counted per request by the replicas", h.med(scPeerHop, hopVia, "peer_ok_per_request")),
	}}
}

// clusterReport writes the cluster's section: its targets, the cold and
// warm pulls beside the single node, and the peer hop.
func (h *harness) clusterReport(b *strings.Builder) {
	b.WriteString("\n## Cluster: 3 replicas on MinIO behind HAProxy (issue 13)\n\n")
	if !h.p.Cluster {
		b.WriteString("Not measured in this run: it needs HAProxy and MinIO (bench/run.sh says which was missing), or BENCH_CLUSTER=0 was set.\n")
		return
	}
	n := slices.Max(h.p.Concurrent)
	fmt.Fprintf(b, "Three `wharf serve` replicas, each with its own data directory (the local tier), one MinIO bucket per cluster (a fresh one for each cold pull), `cluster.peers` with their 127.0.0.1 peer listeners, the relay as their upstream; HAProxy %s round-robin in front, health-checking /healthz. "+
		"**This machine has %d cores**: the replicas, MinIO, HAProxy, the relay, the upstream and the %d clients all share them, so the cluster's throughput is not expected to exceed one replica's here; what three replicas buy is availability and, on machines of their own, capacity.\n\n",
		haproxyVersionNote, runtime.NumCPU(), n)

	b.WriteString("| Target | Measured | Required | |\n|---|---:|---:|---|\n")
	for _, t := range h.clusterTargets() {
		writeTargetRow(b, t)
	}

	img := float64(h.run.AppBytes)
	fmt.Fprintf(b, "\n%d clients at once, medians. Cold: each target started afresh (the cluster on a new bucket). Warm: one long-lived cluster whose replicas all hold the image, and the single node of the other warm scenarios; the cluster through HAProxy, its replica 1 alone, and the single node take turns in rotating order. Server CPU of the cluster is its 3 replicas', HAProxy's and MinIO's; its peak RSS is its largest replica's (MinIO's not counted).\n\n", n)
	b.WriteString("| Figure | cluster (HAProxy) | one replica of it | single node (wharf) | cluster ÷ one replica | cluster ÷ single node |\n|---|---:|---:|---:|---:|---:|\n")
	cold := coldN(n)
	fmt.Fprintf(b, "| Cold pull, %d clients: wall time | %.2f s | — | %.2f s | — | %.2f |\n", n,
		h.med(cold, "cluster", "seconds"), h.med(cold, "wharf", "seconds"), ratio(h.med(cold, "cluster", "seconds"), h.med(cold, "wharf", "seconds")))
	fmt.Fprintf(b, "| Cold pull, %d clients: bytes from the upstream ÷ image | %.3f × | — | %.3f × | — | — |\n", n,
		h.med(cold, "cluster", "upstream")/img, h.med(cold, "wharf", "upstream")/img)
	fmt.Fprintf(b, "| Cold pull, %d clients: CPU-s of the server(s), of the clients | %.1f, %.1f | — | %.1f, %.1f | — | — |\n", n,
		h.med(cold, "cluster", "server_cpu"), h.med(cold, "cluster", "client_cpu"), h.med(cold, "wharf", "server_cpu"), h.med(cold, "wharf", "client_cpu"))
	fmt.Fprintf(b, "| Cold pull, %d clients: peak RSS | %s | — | %s | — | — |\n", n,
		size(int64(h.med(cold, "cluster", "rss"))), size(int64(h.med(cold, "wharf", "rss"))))
	c, r, s := h.med(scClusterWarm, "cluster", "bytes_per_s"), h.med(scClusterWarm, "replica", "bytes_per_s"), h.med(scClusterWarm, "wharf", "bytes_per_s")
	fmt.Fprintf(b, "| Warm pull, %d clients: throughput | %.0f MiB/s | %.0f MiB/s | %.0f MiB/s | %.2f | %.2f |\n", n, c/(1<<20), r/(1<<20), s/(1<<20), ratio(c, r), ratio(c, s))
	fmt.Fprintf(b, "| Warm pull, %d clients: wall time | %.2f s | %.2f s | %.2f s | — | — |\n", n,
		h.med(scClusterWarm, "cluster", "seconds"), h.med(scClusterWarm, "replica", "seconds"), h.med(scClusterWarm, "wharf", "seconds"))

	fmt.Fprintf(b, "\nThe peer hop, with %d tags per round (one small image under each), one request at a time on kept-alive connections, medians over rounds of each round's percentiles. "+
		"Each tag is fetched first by its owner A (the rendezvous ranking of the tag's key), all of them before the timed requests; then, per tag, in rotating order: the GET of the manifest by tag on A (a hit: its record is fresh for the tag TTL), the same GET on B, the replica ranked second, which has never seen the tag and so asks A over the peer listener, and that peer request alone on A's peer listener with the cluster secret; then B's GET once more (a hit on B now).\n\n",
		h.p.PeerTags)
	b.WriteString("| Request | p50 | p90 |\n|---|---:|---:|\n")
	for _, row := range []struct{ name, kind string }{
		{"Hit on the owner: GET /v2/…/manifests/<tag>", hopLocal},
		{"Via another replica, which asks the owner: GET /v2/…/manifests/<tag>", hopVia},
		{"The peer request alone: GET /cluster/v1/manifests/<tag> on the owner", hopRoute},
		{"The same GET on the other replica once more (a hit there now)", hopAgain},
	} {
		fmt.Fprintf(b, "| %s | %.2f ms | %.2f ms |\n", row.name, h.med(scPeerHop, row.kind, "p50_ms"), h.med(scPeerHop, row.kind, "p90_ms"))
	}
	fmt.Fprintf(b, "\nThe replicas counted %.2f successful requests to a peer per GET via B (wharf_peer_requests_total{result=\"ok\"}; 1.00 means every one took the hop).\n",
		h.med(scPeerHop, hopVia, "peer_ok_per_request"))
	var ops []string
	for _, op := range s3Ops {
		if v := h.med(scPeerHop, hopVia, "s3_"+op+"_per_request"); v > 0 {
			ops = append(ops, fmt.Sprintf("%.2f %s", v, op))
		}
	}
	if len(ops) > 0 {
		fmt.Fprintf(b, "\nDuring the timed requests (the owners' fetches done before), the replicas made, per tag (over its four timed GETs), %s requests to the bucket, %.1f ms each on average to the answer's headers (wharf_s3_requests_total, wharf_s3_request_seconds).\n",
			strings.Join(ops, ", "), h.med(scPeerHop, hopVia, "s3_mean_ms"))
	}
}

// haproxyVersionNote names the balancer in the report.
const haproxyVersionNote = "(the system's haproxy, `-db`)"

// writeTargetRow writes one row of a targets table.
func writeTargetRow(b *strings.Builder, t target) {
	what := t.what
	if t.note != "" {
		what += " — " + t.note
	}
	req := "≥ "
	if t.atMost {
		req = "≤ "
	}
	fmt.Fprintf(b, "| %s | %s | %s%s | %s |\n", what, t.format(t.measured), req, t.format(t.limit), t.verdict())
}
