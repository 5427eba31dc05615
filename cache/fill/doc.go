// Package fill fetches each missing blob from the upstream exactly once, no
// matter how many clients ask for it at the same time.
//
// The first client to miss a digest starts a fill: a goroutine owned by the
// Group (not by that client) that copies the upstream body into a temp file
// while hashing it. Every client, the first included, is a Follower that
// reads the growing temp file from its own offset and waits for more bytes
// as they land, so the first byte reaches clients as soon as the upstream
// sends it (stream, don't stage) and a client that leaves cancels nothing
// but its own read.
//
// When the upstream body breaks off, the fill reopens it with a Range from
// the last byte written (bounded resumes) and keeps hashing where it stopped.
// At the end the digest decides: a match is fsynced, renamed into place and
// indexed; a mismatch deletes the temp file and every follower's next read
// fails, so no client ever sees a clean end of a wrong blob.
//
// A big blob from an upstream that honours Range is fetched in segments
// (segment.go): the first range tells the size, the rest is cut into
// ranges that up to Options.Segments workers fetch at once, each written
// with WriteAt where it belongs in the one temp file. Followers still
// read that file from byte 0, but only its contiguous prefix; the first
// range is hashed as it streams, and the fill's goroutine hashes the
// rest of the prefix in order as it grows, reading back what landed
// ahead, so the digest still decides before the last byte is visible.
// A worker takes a range at most 2×Segments ranges past that prefix, so
// a slow range holds back the rest instead of letting it land where no
// follower can read it yet. An upstream that ignores Range is read as
// one stream, as is a blob whose size it does not tell.
//
// A fill stops storing when the disk fills up (ErrNoSpace) or when a blob
// whose size the upstream did not announce outgrows what Options.Keep
// allows (ErrTooLarge): the temp file is dropped and each follower reads
// on from the upstream at its own offset, so clients still get every byte
// while the temp directory never holds more than the cache's cap. A blob
// to be segmented whose size Keep refuses is not staged at all: its
// followers read it from the upstream from the start (ErrTooLarge).
//
// Files:
//
//	fill.go      Group, Options, the fill's goroutine, commit
//	follower.go  the shared state of a fill and a client's reader of it
//	stream.go    the one-stream copy, resumed with a Range from the last byte
//	ranged.go    the first range, which decides: one stream, or segments
//	segment.go   the segments' workers and the in-order hash of the prefix
//	resume.go    reading a body with a stall timer, resuming it when it breaks
package fill
