// Package push is wharf's write path: what clients push (blob upload
// sessions, cross-repository mounts, manifest PUTs), what they delete,
// the referrers API, and write-through of both to the upstream. Its
// Writer is the store proxy serves from: every method proxy calls on it
// is written out here, the reads that differ in repositories pushed to
// (pushreads.go, pushedtags.go, tombstoned.go) and the ones passed to the
// Cache unchanged alike, so that every difference is visible in one
// package.
//
// What it keeps:
//
//   - Pushed content is pinned: a finished upload, a mount and a pushed
//     manifest are stored like mirrored content (same files, same index)
//     but never evicted by the LRU.
//   - A mirrored name belongs to its upstream (mirrored.go): a tag push
//     is refused where the upstream serves that tag, unless the operator
//     let pushes shadow it (TagShadower) or write-through carries the
//     push to the upstream too.
//   - A repository holds only what was pushed, mounted, pulled or
//     imported into it: a manifest is accepted only when its repository
//     holds everything it references, and a delete acts on one
//     repository's link.
//   - While a write-through delete is pending (WriteThrough.Pending), the
//     tag or digest it removed stays hidden from reads (tombstoned.go), so
//     the upstream, which still has it, cannot give it back.
//
// How it sits on the cache: proxy → push → cache. push reads through the
// Cache's reads and changes it only through the operations of
// cache/writeseam.go (PushManifest, LinkUploaded, Mount, Unlink,
// UnlinkManifest, DeletePushedTag, …), each one locked operation of the
// cache that keeps its invariants; no lock or index transaction crosses
// the boundary, and the cache does not import push. Upload sessions are
// cache/upload's, opened by Cache.OpenUploads; a finished session enters
// the store through Cache.Ingest, the door wharf import uses too.
// Write-through is package writethrough, known here only as the
// WriteThrough interface: a delete is queued there before it is made
// here, so that no read in between fetches the content back.
package push
