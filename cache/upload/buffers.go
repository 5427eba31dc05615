package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/semaphore"
)

// A chunk of unknown length (no Content-Length: docker sends a layer so)
// cannot be streamed to S3 as it arrives: a multipart upload needs each
// part's size before it is sent, so the body is staged one part (16 MiB
// by default) at a time in memory. Without a cap, a burst of such PATCHes
// takes a part each. partBuffers caps them across the replica's sessions
// (Limits.ChunkBuffers): a request waits for a buffer, for as long as its
// context allows, rather than allocate past the cap; buffers given back
// are reused until the garbage collector takes them.

// DefaultChunkBuffers is Limits.ChunkBuffers' default: 16 parts of the
// default 16 MiB.
const DefaultChunkBuffers = 256 << 20

// errNoBuffer: a request's context ended while it waited for a buffer.
var errNoBuffer = errors.New("no buffer for a chunk of unknown length")

// partStreamer is a ChunkStore that streams a body of unknown length
// through a buffer the caller lends (cache/s3's Chunks).
type partStreamer interface {
	PartSize() int64
	PutBuffered(ctx context.Context, session, chunk string, r io.Reader, buf []byte) (int64, error)
}

// partBuffers lends buffers of one size, at most limit bytes of them at
// once.
type partBuffers struct {
	size int64
	sem  *semaphore.Weighted
	pool sync.Pool // of *[]byte
}

// newPartBuffers caps buffers of size bytes at limit bytes together (at
// least one buffer, so that such a chunk can be taken at all).
func newPartBuffers(size, limit int64) *partBuffers {
	return &partBuffers{size: size, sem: semaphore.NewWeighted(max(limit, size))}
}

// get waits for a buffer until ctx ends.
func (b *partBuffers) get(ctx context.Context) (*[]byte, error) {
	if err := b.sem.Acquire(ctx, b.size); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoBuffer, err)
	}
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return buf, nil
	}
	buf := make([]byte, b.size)
	return &buf, nil
}

// put gives a buffer back.
func (b *partBuffers) put(buf *[]byte) {
	b.pool.Put(buf)
	b.sem.Release(b.size)
}

// putChunk streams r into a new chunk: through a lent buffer when its
// length is unknown and the store can take one, else straight through.
func (s *Sessions) putChunk(ctx context.Context, id, name string, r io.Reader, length int64) (int64, error) {
	ps, ok := s.opts.Shared.Chunks.(partStreamer)
	if length >= 0 || !ok || s.bufs == nil {
		return s.opts.Shared.Chunks.Put(ctx, id, name, r, length)
	}
	buf, err := s.bufs.get(ctx)
	if err != nil {
		return 0, err
	}
	defer s.bufs.put(buf)
	return ps.PutBuffered(ctx, id, name, r, *buf)
}
