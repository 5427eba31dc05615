// Package upload holds blob upload sessions: the bytes a client pushes in
// one or more requests before it names their digest. A session is a file
// and an index record; finishing one checks the digest of everything
// received and hands the file to the cache's one ingest function, the same
// one wharf import uses, so pushed and imported content enter the store by
// one door.
//
//	data/uploads/<uuid>   the bytes received so far (whole chunks only)
//	index u/<uuid>        index.UploadRecord: repository, client, bytes
//	                      that count, the running sha256's state
//
// Each chunk is appended, fsynced and then recorded; a chunk that fails
// part-way is cut off again, so a session always holds whole chunks and a
// client that lost its connection resumes from the Range it is told. A
// restart keeps sessions that have both file and record (Open), and a
// sweeper goroutine, owned by Sessions and stopped by Close, ends sessions
// idle for longer than Options.Expiry. Limits cap the sessions open at
// once, in all and per client.
//
// With Options.Shared (storage.s3) the sessions live in the store the
// replicas share instead — a state record and one object per chunk — so
// that a push whose requests reach different replicas completes, and what
// one acknowledged survives it (shared.go draws the layout and the rules
// that make two replicas' writes safe). A request streaming into such a
// session keeps it alive for every replica's sweep (sharedkeep.go), and
// a chunk of unknown length streams through a buffer the sessions lend,
// at most Limits.ChunkBuffers of them at once (buffers.go).
//
// Hashing lives in hash.go alone: a running sha256 carried across
// requests in the record, and a re-read of the file when that state is
// lost or the digest is not sha256.
package upload
