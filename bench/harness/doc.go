// Command harness is `make bench`: it runs wharf and the CNCF distribution
// registry in proxy mode side by side against one upstream registry, with
// wharf's own load generator (`wharf bench pull`), and writes
// docs/benchmarks.md and docs/benchmarks.svg. run.sh builds its parts and
// starts it.
//
// The processes, all on 127.0.0.1:
//
//	wharf bench pull ──▶ wharf ─────────┐
//	                 ──▶ distribution ──┼──▶ relay ──▶ upstream (distribution,
//	                 ──▶ baseline       │    paces 200 MiB/s,     filesystem storage)
//	                 ──────────────────-┘    counts bytes;
//	                                         WAN: + 50 ms RTT,
//	                                         25 MiB/s per connection
//
// The relay (bench/relay) is the link to a remote registry: every byte a
// mirror fetches passes through it, paced at one rate shared by all
// connections, and its byte count is "bytes fetched from the upstream".
// The baseline (bench/baseline) is a static file server on wharf's own blob
// files and a bare handler returning manifests from memory: what the
// machine allows. A direct pull through the relay is the no-mirror case.
//
// Cold scenarios start each mirror afresh on an empty data directory and
// stop it afterwards; warm scenarios use one long-lived, pre-warmed instance
// of each. Rounds alternate which mirror goes first, and the report gives
// medians over rounds: the machine is shared and noisy, so only figures
// taken side by side in one run are compared.
//
// The WAN scenarios (issue 14, wan.go) turn on the relay's round-trip
// time (50 ms) and per-connection rate (25 MiB/s) beside its shared rate,
// and pull an image of 12 layers of mixed sizes 3 layers at a time, as
// the docker daemon does: direct, through wharf and through distribution,
// one client and 8 at once, each mirror fresh; then one pull from mirrors
// that hold the image, counting the upstream requests it caused.
//
// With MinIO and HAProxy at hand (run.sh finds them), the run also
// measures a cluster (issue 13): three replicas on one MinIO behind
// HAProxy, cold beside the single node, warm against one of its replicas
// and the single node, and the latency a peer hop adds to a hit
// (cluster.go draws it).
//
// Files: main.go (parameters, the run), procs.go (processes and /proc),
// servers.go (starting each server), seed.go (images pushed with
// go-containerregistry), load.go (running the load generator),
// scenarios.go (what is measured), report.go (the Markdown, the targets),
// svg.go (the chart); wan.go and reportwan.go (the WAN scenarios and
// their section); cluster.go (the cluster's processes and configs),
// clusterscen.go (its scenarios), scrape.go (metrics pages,
// percentiles), reportcluster.go (its section of the report).
package main
