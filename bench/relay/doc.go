// Command relay is the benchmark's network link to the upstream registry: a
// TCP relay that simulates a link to a remote registry and counts the bytes
// in each direction, which is how the benchmark knows what a mirror fetched
// from its upstream.
//
//	relay --listen 127.0.0.1:7001 --target 127.0.0.1:7000 --control 127.0.0.1:7002 \
//	      --rate 209715200 --conn-rate 26214400 --rtt 50ms
//
// The link (delay.go, pacer.go):
//
//	client ──▶ delay line (rtt/2) ─────────────────────────────────▶ upstream
//	client ◀── delay line (rtt/2) ◀── link pacer ◀── conn pacer ◀── upstream
//	           ≤ 4 MiB in flight       --rate         --conn-rate
//	           per direction           (shared)       (per connection)
//
// A new connection waits one rtt before its first byte moves, as a TCP
// handshake would make it. The download is paced twice: by a rate per
// connection (a TCP flow's share of a long path) and by one rate shared
// by all connections (the link). Requests (client to upstream) are
// delayed and counted but not paced: a pull's requests are tiny.
//
// The control listener answers GET /stats with the byte counts and the
// link as JSON, and POST /rate?bps=N, /connrate?bps=N (0 is unlimited) and
// /rtt?d=50ms (0 is none) with a new setting, which applies to the next
// chunk of every connection: one relay serves the plain, the unthrottled
// and the WAN scenarios of a run.
package main
