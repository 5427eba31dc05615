// Package prefetch fetches an image's blobs as soon as wharf has served
// its manifest, before the client asks for them. Docker and containerd
// fetch three layers at a time; wharf sees the whole list at once, and
// with every layer already on its way the pull ends sooner than pulling
// from the upstream directly.
//
//	client ─GET manifest─▶ proxy ─Image(repo, m)─▶ Prefetcher (only if the cache fetched m,
//	                                                 │          and m is an image, not an index)
//	                                                 │ a lane per upstream: a bounded queue,
//	                                                 │ never waited on (full: "dropped")
//	                                                 ▼
//	                     Concurrency workers per lane, each blob in turn:
//	                       upstream marked down / rate-limiting → not asked ("upstream_down", "rate_limited")
//	                       stored, or a fill running already    → not asked ("held")
//	                       else Store.Blob, the client's read path, and wait for the fill to end ("fetched")
//	client ─GET blob──▶ proxy ─Used(d)─▶ Prefetcher: a blob it fetched, read the first time ("used")
//
// Prefetch asks only for what the manifest references (its config and
// layers, foreign layers skipped), which the client pulling it would have
// asked for: it costs the upstream no byte the pull would not have. It
// fills through the cache's own read path, so what it fetches is verified
// before it is visible and fetched once: a client asking for a blob
// prefetch is filling joins that fill and streams from it, and a client
// asking for one still queued starts the fill itself, which the worker
// then finds running and leaves alone. A worker holds its place until its
// fill has ended, so Concurrency bounds the fills prefetch has running
// per upstream.
//
// Files:
//
//	prefetch.go  Prefetcher, Options, New, Image, Used, Close
//	lane.go      an upstream's queue and workers, and the fetch of one blob
package prefetch
