package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// A chunk of unknown length (no Content-Length: docker sends a layer so)
// cannot be streamed to S3 as it arrives: a multipart upload needs each
// part's size before it is sent, so the body is staged one part (16 MiB
// by default) at a time in memory. Without a cap, a burst of such PATCHes
// takes a part each. partBuffers caps them across the replica's sessions
// (Limits.ChunkBuffers); a chunk whose announced length passes the part
// size takes one too, since the client library would otherwise allocate a
// part for it outside the cap. Buffers given back are reused until the
// garbage collector takes them.
//
// A request holding a buffer keeps it as long as its body trickles in, so
// the cap is also a door one client could hold shut: no client holds more
// than half the buffers (docker streams 5 layers at once), and a request waits for one at most
// bufferWait, then fails with ErrBusy (a 503 the client retries) rather
// than queue behind a slow body without end; and a body that holds a
// buffer but fills it slower than minFillRate is cut.

// DefaultChunkBuffers is Limits.ChunkBuffers' default: 16 parts of the
// default 16 MiB.
const DefaultChunkBuffers = 256 << 20

// bufferWait bounds a request's wait for a buffer.
const bufferWait = 30 * time.Second

// A body that holds a buffer must fill it at least minFillRate, over each
// fillWindow spent waiting for its bytes (a store taking a full part is
// not the body's time): one byte every 29 s passes the idle timeout but
// not this.
const (
	minFillRate = 8 << 10 // bytes a second: 64 kbit/s, a slow uplink passes
	fillWindow  = 30 * time.Second
)

// errTooSlow: a body that holds a buffer filled it too slowly.
var errTooSlow = fmt.Errorf("the body fills its part buffer slower than %d KiB/s", minFillRate>>10)

// errNoBuffer: a request's context ended while it waited for a buffer.
var errNoBuffer = errors.New("no buffer for a chunk")

// partStreamer is a ChunkStore that streams a body through a buffer the
// caller lends (cache/s3's Chunks).
type partStreamer interface {
	PartSize() int64
	PutBuffered(ctx context.Context, session, chunk string, r io.Reader, buf []byte) (int64, error)
}

// partBuffers lends buffers of one size, at most limit bytes of them at
// once, and at most perClient buffers to one client.
type partBuffers struct {
	size      int64
	perClient int
	wait      time.Duration       // bufferWait; tests shorten it
	waiting   func(client string) // called as a request starts to wait; tests only
	now       func() time.Time    // the clock of fill rates: time.Now; tests set theirs
	sem       *semaphore.Weighted
	pool      sync.Pool // of *[]byte

	mu    sync.Mutex
	held  map[string]int // buffers lent, by client
	freed chan struct{}  // closed, and replaced, as a client gives one back
}

// newPartBuffers caps buffers of size bytes at limit bytes together (at
// least one buffer, so that such a chunk can be taken at all), half of
// them per client.
func newPartBuffers(size, limit int64) *partBuffers {
	limit = max(limit, size)
	return &partBuffers{
		size: size, perClient: int(max(limit/size/2, 1)), wait: bufferWait, now: time.Now,
		sem: semaphore.NewWeighted(limit), held: map[string]int{}, freed: make(chan struct{}),
	}
}

// get lends client a buffer: it waits for one until ctx ends
// (errNoBuffer) or b.wait passes (ErrBusy).
func (b *partBuffers) get(ctx context.Context, client string) (*[]byte, error) {
	if b.waiting != nil {
		b.waiting(client)
	}
	wctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.take(wctx, client); err != nil {
		return nil, b.waitErr(ctx, err)
	}
	if err := b.sem.Acquire(wctx, b.size); err != nil {
		b.give(client)
		return nil, b.waitErr(ctx, err)
	}
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return buf, nil
	}
	buf := make([]byte, b.size)
	return &buf, nil
}

// waitErr words a wait that ended: the client left, or the wait was too
// long.
func (b *partBuffers) waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errNoBuffer, ctx.Err())
	}
	return fmt.Errorf("%w: no buffer for a chunk freed within %s (%v)", ErrBusy, b.wait, err) // not a timeout of the request
}

// take counts a buffer against client's share, waiting while client
// holds its share.
func (b *partBuffers) take(ctx context.Context, client string) error {
	for {
		b.mu.Lock()
		if b.held[client] < b.perClient {
			b.held[client]++
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("this client holds %d buffers, its share: %w", b.perClient, ctx.Err())
		}
	}
}

// give takes a buffer off client's share and wakes the clients waiting.
func (b *partBuffers) give(client string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[client]--; b.held[client] <= 0 {
		delete(b.held, client)
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// put gives a buffer back. A buffer the store failed with is not reused:
// a transport that gave up on the request may still be reading it.
func (b *partBuffers) put(client string, buf *[]byte, failed bool) {
	if !failed {
		b.pool.Put(buf)
	}
	b.sem.Release(b.size)
	b.give(client)
}

// buffered reports whether a chunk of length bytes (-1: unknown) streams
// through a lent buffer: when its length is unknown or passes the part
// size, and the store can take one.
func (s *Sessions) buffered(length int64) bool {
	_, ok := s.opts.Shared.Chunks.(partStreamer)
	return ok && s.bufs != nil && (length < 0 || length > s.bufs.size)
}

// slowBody is a body that holds a buffer; it fails with errTooSlow once
// it gives less than minFillRate over a fillWindow of waiting for it.
type slowBody struct {
	r      io.Reader
	now    func() time.Time
	waited time.Duration // in Read, this window
	n      int64         // bytes given, this window
}

func (b *slowBody) Read(p []byte) (int, error) {
	start := b.now()
	n, err := b.r.Read(p)
	b.waited += b.now().Sub(start)
	b.n += int64(n)
	if b.waited >= fillWindow {
		if float64(b.n) < minFillRate*b.waited.Seconds() {
			return n, fmt.Errorf("%w: %d bytes in %s", errTooSlow, b.n, b.waited.Round(time.Second))
		}
		b.waited, b.n = 0, 0
	}
	return n, err
}

// putChunk streams r into a new chunk: through a lent buffer when
// buffered says so, else straight through. client is the session's,
// whose share of the buffers it takes.
func (s *Sessions) putChunk(ctx context.Context, id, client, name string, r io.Reader, length int64) (int64, error) {
	if !s.buffered(length) {
		return s.opts.Shared.Chunks.Put(ctx, id, name, r, length)
	}
	ps := s.opts.Shared.Chunks.(partStreamer)
	buf, err := s.bufs.get(ctx, client)
	if err != nil {
		return 0, err
	}
	n, err := ps.PutBuffered(ctx, id, name, r, *buf)
	s.bufs.put(client, buf, err != nil)
	return n, err
}
