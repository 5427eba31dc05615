// Package evict decides which stored content goes: the eviction and
// garbage-collection policy, as pure code over plain data.
//
// A Plan is built from one Item per stored digest (its size, what it
// references, whether it is pinned, when it was last used) and a list of
// extra protected digests (tags named by the operator's pins). It does no
// I/O and takes no locks; the cache reads the records, decides when to run
// and how far, and does the removing, which may refuse an item a client
// holds open. The policy:
//
//   - Image-wise, least recently used first. The units are roots: content
//     no other item references. A root goes together with what only it
//     references (layers, config, child manifests), referrer before
//     referent, so no kept manifest ever points at removed content. A
//     layer two images share goes with the last of them.
//   - Pinned content, protected digests and everything they reference,
//     transitively, are never offered.
//   - A refused removal keeps the item, and with it whatever it
//     references: the rest of that image is not offered.
//   - The caller says when enough is freed; a run stops between images,
//     never inside one.
//
// Garbage collection (Unreachable) is the same reachability run to the
// end: what no tag reaches, and nothing protected or pinned reaches, goes.
//
// References to digests that are not items are ignored; cycles and
// self-references keep their members (nothing outside them can free them)
// and never loop.
package evict
