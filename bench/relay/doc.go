// Command relay is the benchmark's network link to the upstream registry: a
// TCP relay that paces the bytes flowing from the upstream to its clients at
// a rate shared by all connections, as one link to a remote registry would
// be, and counts the bytes in each direction, which is how the benchmark
// knows what a mirror fetched from its upstream.
//
//	relay --listen 127.0.0.1:7001 --target 127.0.0.1:7000 --control 127.0.0.1:7002 --rate 209715200
//
// The control listener answers GET /stats with the byte counts as JSON and
// POST /rate?bps=N with a new rate (0 is unlimited), so one relay serves
// the throttled and the unthrottled scenarios of a run.
//
// Requests (client to upstream) are counted but not paced: a pull's
// requests are tiny, and the link that matters is the download.
package main
