// Package index is the cache's Badger database: what content is stored,
// which tags point where, which repositories exist. It is the only package
// that imports Badger.
//
// Key schema (keys.go holds the prefixes and the shared builders; the
// upload, referrer and queue keys are built beside their records in
// uploads.go, referrers.go and queue.go; values are JSON):
//
//	b/<digest>                      BlobMeta   verified content on disk
//	t/<repo>\x00<tag>\x00<accept>   TagRecord  a tag as the upstream answered it for one Accept set
//	l/<repo>\x00<tag>               TagRecord  a tag pushed here; found before the upstream is asked
//	r/<repo>                        {}         repositories seen (the catalog)
//	a/<digest>                      int64      last access, unix ns, big-endian (written in batches)
//	s/<repo>                        RepoStats  manifest requests and cache hits (written in batches)
//	k/<repo>\x00<digest>            (empty)    repo may serve this content (links.go)
//	h/<digest>\x00<repo>            (empty)    the same link, reversed: who still holds the content
//	v/links                         "2"        every k/ key has its h/ key (set by the migration at open)
//	u/<uuid>                        UploadRecord  a blob upload in progress (cache/upload; file data/uploads/<uuid>)
//	f/<repo>\x00<subject>\x00<digest>  Descriptor    a manifest referring to subject (referrers.go)
//	q/<repo>\x00<tag>\x00<digest>[\x00<op>]  Job     a push (or a delete: op) waiting for write-through (queue.go)
//
// <repo> is the repository's full identity, upstream included
// ("docker.io/library/alpine"). Tags can hold neither "\x00" nor "/" per the
// reference grammar, so the separators cannot be forged by a client.
//
// The files under blobs/ are the truth about content; the index is a faster
// view of them and may lag after a crash (writes are not fsynced one by one).
// Callers treat an index entry whose file is gone as a miss and drop it.
package index
