// Package cache is wharf's store: verified content on disk, an index of
// tags and content, hot metadata in memory, and the fills that bring missing
// content from an upstream. It knows nothing of HTTP routing; it asks its
// Origins (the upstream registries) for what it lacks.
//
// Content bytes sit behind Store (store.go): writers stage them in a local
// temp file, hashing as they go, and Put it under its digest. The disk
// store (cache/disk) is the default; every Store passes the table in
// cache/storetest, crashes included. Below the cache:
//
//	cache/           read path, eviction, reconciliation, the Store interface;
//	                 writeseam.go and transferseam.go: the operations that
//	                 package push and package archive write through
//	cache/disk       the disk Store: blobs/sha256/ab/…, tmp/ swept at open
//	cache/s3         the S3 Store: <prefix>/blobs/sha256/ab/… in a bucket,
//	                 staged locally, ranged reads (docs/cluster.md)
//	cache/tier       local disk (hot, LRU-capped) in front of a shared Store:
//	                 Put shared first, misses promoted in the background, verified
//	cache/storetest  the conformance table every Store passes
//	cache/index      Badger: content meta, tags, links, uploads, the
//	                 write-through queue (keys.go)
//	cache/fill       one upstream fetch per digest (one stream, or concurrent
//	                 ranges of a big blob), followers on the growing file
//	cache/evict      which content eviction and gc remove: image-wise, least
//	                 recently used first, pinned trees kept; pure code over
//	                 plain records (the cache reads them and removes)
//	cache/upload     upload sessions: data/uploads/<uuid>, slots, expiry sweep
//	cache/records    the small records replicas share (Options.Records; cache/s3
//	                 keeps them in the bucket): shared*.go writes pushed tags and
//	                 links before a push is acknowledged, reads them through,
//	                 and rebuilds an empty index from them; evicting/ records
//	                 are eviction's handshake with pushes and readers
//	                 (sharedevicting.go, sharedbatch.go), access/ records each
//	                 replica's reads for the leader (sharedaccess.go)
//
// Verified content that arrives whole (a finished upload, an imported
// blob) enters through one door, Cache.Ingest: Store.Put, then the index
// record, pinned. wharf import stages a blob in Cache.TempFile and
// verifies it in package archive before Ingest; an imported manifest
// enters through Cache.IngestManifest, which hashes it again. Fills commit
// through fill.Group, since followers read them while they grow.
//
// The write path sits above the cache, in package push (proxy → push →
// cache): uploads, mounts, manifest PUTs, deletes, referrers. It changes
// the cache only through the operations of writeseam.go, each one locked
// operation that keeps the invariants below; the cache does not import
// it. Write-through is package writethrough: it works the queue
// (Cache.Queue) and reads stored content through interfaces of its own;
// push knows it only as push.WriteThrough.
//
// What content is — media types, the manifest size limit, a manifest's
// references and validity, platforms, tags, and the Verifier every write
// path hashes through — is package oci, shared with every other layer.
//
// The invariants it keeps (each has a test named after it):
//
//  1. Verified before visible: content is served as a hit only after its
//     bytes hashed to its digest (temp file, hash, fsync, rename, index).
//  2. Stream, don't stage: a miss is streamed to clients as the upstream
//     sends it; a wrong digest fails every reader and keeps nothing.
//  3. One fetch per blob (and per manifest request): concurrent misses share
//     one upstream request.
//  4. A leaving client doesn't cancel others: fills and manifest fetches run
//     detached from the client that started them.
//  5. Digests are immutable, tags are not: a tag older than the TTL is
//     revalidated with a HEAD, fetched again only when its digest changed,
//     and served stale when the upstream is unreachable.
//  6. Constant memory: blobs are files, never byte slices; manifests (at
//     most 4 MiB) are the only content held in memory.
//  7. A digest opens only what the repository holds: reads, manifest PUTs
//     and DELETEs act on content linked to the repository named (links.go),
//     and content leaves the disk when no repository links it.
package cache
