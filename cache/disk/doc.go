// Package disk keeps verified content as files named by their digest.
//
// Layout under the data directory:
//
//	blobs/sha256/ab/abcdef…   verified content (layers, configs, manifests)
//	tmp/                      fills and writes in progress; swept at start
//
// A file appears under blobs/ only by rename from tmp/ after its bytes were
// hashed, checked against the digest and fsynced, so the presence of a file
// there is itself the proof that it was verified. A crash leaves at worst a
// stray temp file (swept) or a verified file the index has not heard of yet
// (harmless: its content is exactly what its name says).
package disk
