// Package disk keeps verified content as files named by their digest: the
// first implementation of cache.Store, and the default. It sits under
// cache/ (as will the S3 store) because only the cache consumes a store;
// the conformance table both pass is cache/storetest.
//
// Layout under the data directory:
//
//	blobs/sha256/ab/abcdef…   verified content (layers, configs, manifests)
//	tmp/                      fills and writes in progress; swept at start
//
// A file appears under blobs/ only by rename from tmp/ (or from an upload
// session's file under uploads/) after its bytes were hashed, checked
// against the digest and fsynced, and the directory is fsynced after the
// rename, so the presence of a file there is itself the proof that it was
// verified. A crash leaves at worst a stray temp file (swept) or a
// verified file the index has not heard of yet (harmless: its content is
// exactly what its name says).
//
// A hit is an *os.File, so http.ServeContent sends it with sendfile, and a
// file deleted while a client reads it stays readable through its open
// descriptor.
package disk
