// Package prefetch fetches an image's blobs as soon as wharf has served
// its manifest, before the client asks for them. Docker and containerd
// fetch three layers at a time; wharf sees the whole list at once, and
// with every layer already on its way the pull ends sooner than pulling
// from the upstream directly.
//
//	client ─HEAD manifest─▶ proxy ─Arm(repo, m)─▶ remembered (if the cache fetched m), nothing queued
//	client ─GET manifest──▶ proxy ─answers, then Image(repo, m)─▶ Prefetcher
//	                          (only if the cache fetched m or a HEAD armed it, and m is an
//	                           image: not an index, no subject, an image config or schema 1)
//	                                                 │ a lane per upstream: a bounded queue,
//	                                                 │ never waited on (full: "dropped"); a digest
//	                                                 │ queued or being fetched is not queued again ("held")
//	                                                 ▼
//	                     Concurrency workers per lane, each blob in turn:
//	                       upstream marked down / rate-limiting → not asked ("upstream_down", "rate_limited")
//	                       cache past its high watermark        → not asked ("cache_full")
//	                       larger than the cache keeps          → not asked ("too_large")
//	                       Store.Prefetch: stored, or a fill running → not asked ("held")
//	                                       else a fill started, waited for to its end ("fetched")
//	client ─GET blob──▶ proxy ─Used(d)─▶ Prefetcher: a blob it fetched, read the first time ("used")
//
// Prefetch asks only for what an image manifest a client GETs references
// (its config and layers, foreign layers skipped), which a client pulling
// it onto a node holding none of it would ask for next: for that pull it
// costs the upstream no byte more. Limits: a node that holds some layers
// already (docker, containerd) skips them and prefetch fetches them all
// the same; a lazy-pull snapshotter (stargz, SOCI, nydus) reads only the
// parts of layers it needs, and prefetch fetches them whole. A HEAD alone
// (crane digest, Renovate or Flux polling a tag) prefetches nothing; it
// arms the manifest for the next GET of it, by tag or digest (containerd
// HEADs a tag, then GETs its digest). Referrers (signatures, SBOMs) and
// artifacts are never prefetched. A GET of a manifest wharf did not hold
// (crane manifest, skopeo inspect) does start its prefetch. Nothing is
// prefetched while the cache is past its high watermark: a blob fetched
// then, with a fresh access time, and never read, would evict content
// clients used.
//
// It fills through the cache (cache.Cache.Prefetch), so what it fetches is
// verified before it is visible and fetched once: whether a fill starts is
// decided under the fill table's lock, so a worker never joins a fill, and
// one that finds the blob stored or being filled asks nothing of anyone
// (no HEAD either) and counts no cache hit or miss. A client asking for a
// blob prefetch is filling joins that fill and streams from it, and a
// client asking for one still queued starts the fill itself, which the
// worker then finds running and leaves alone. A worker holds its place
// until its fill has ended, so Concurrency bounds the fills prefetch has
// running per upstream; each fill of a big blob may be segmented (up to
// upstream.segments ranges at once), so the connections prefetch opens
// to one upstream can reach Concurrency × segments. A fill already
// running when the upstream answers a 429 retries it as a client's fill
// would; only blobs not yet started stop ("rate_limited"). In a cluster a
// replica prefetches through the cache's origin as its clients' misses
// do: through the peer owning the digest, so the upstream sends a blob
// once for the whole cluster.
//
// Files:
//
//	prefetch.go  Prefetcher, Options, New, Arm, Image, Used, Close
//	lane.go      an upstream's queue, its pending set and workers, and the fetch of one blob
package prefetch
