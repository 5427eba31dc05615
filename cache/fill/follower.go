package fill

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// fill is the shared state of one blob being fetched. The temp file stays
// open until the fill and all its followers are done with it, so followers
// keep reading it by descriptor after it was renamed into place or, on
// failure, unlinked.
type fill struct {
	d      digest.Digest
	open   Source      // for followers to fall back on when the fill stops storing
	ranged RangeSource // nil: the blob comes in one stream
	file   *os.File    // set once by the fill goroutine, under mu
	// resumes counts the bodies reopened, by all segments together;
	// Options.Resumes bounds it.
	resumes atomic.Int64

	mu       sync.Mutex
	refs     int
	size     int64 // total size announced by the upstream, -1 if unknown
	n        int64 // bytes written so far
	started  bool
	verified bool // every byte arrived and hashed to the digest
	done     bool
	err      error
	wake     chan struct{} // closed and replaced whenever state changes
}

func (f *fill) follow() *Follower {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
	return &Follower{f: f}
}

func (f *fill) release() {
	f.mu.Lock()
	f.refs--
	last, file := f.refs == 0, f.file
	f.mu.Unlock()
	if last && file != nil {
		file.Close()
	}
}

// broadcast wakes every waiter; f.mu must be held.
func (f *fill) broadcast() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// hasFile reports whether the fill created its temp file yet. Only the fill
// goroutine sets the file, so it may read f.file without the lock after this.
func (f *fill) hasFile() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file != nil
}

func (f *fill) start(file *os.File, size int64) {
	f.mu.Lock()
	f.file, f.size, f.started = file, size, true
	f.broadcast()
	f.mu.Unlock()
}

func (f *fill) advance(n int64) {
	f.mu.Lock()
	f.n += n
	f.broadcast()
	f.mu.Unlock()
}

// publish sets the bytes written to n, the contiguous prefix of a
// segmented fill, waking followers when it grew.
func (f *fill) publish(n int64) {
	f.mu.Lock()
	if n > f.n {
		f.n = n
		f.broadcast()
	}
	f.mu.Unlock()
}

// progressed is the bytes written and the channel closed when that changes.
func (f *fill) progressed() (int64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.wake
}

func (f *fill) written() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// verify marks the bytes as checked: readers may now see the end.
func (f *fill) verify() {
	f.mu.Lock()
	f.verified = true
	f.broadcast()
	f.mu.Unlock()
}

func (f *fill) finish(err error) {
	f.mu.Lock()
	f.done, f.err = true, err
	f.broadcast()
	f.mu.Unlock()
}

// Follower is one client's view of a fill. Close it when done.
type Follower struct {
	f    *fill
	once sync.Once

	mu     sync.Mutex
	direct []io.Closer // upstream bodies opened after a full disk
}

// Digest is the digest being filled.
func (fw *Follower) Digest() digest.Digest { return fw.f.d }

// Ready waits until the upstream answered: it returns the blob's size (-1 if
// unknown), or the error that ended the fill before any byte arrived.
func (fw *Follower) Ready(ctx context.Context) (int64, error) {
	f := fw.f
	for {
		f.mu.Lock()
		started, done, err, size, wake := f.started, f.done, f.err, f.size, f.wake
		f.mu.Unlock()
		switch {
		case started:
			return size, nil
		case done:
			return 0, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Wait blocks until the fill has ended — stored, or given up — and
// returns how it ended. Readers see the end of a verified blob before it is
// stored; callers that need it stored (warming a cache) wait here.
func (fw *Follower) Wait(ctx context.Context) error {
	f := fw.f
	for {
		f.mu.Lock()
		done, err, wake := f.done, f.err, f.wake
		f.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Reader reads the blob from offset, waiting for bytes not yet written. It
// returns io.EOF only after the fill verified the digest; any failure of the
// fill is returned instead, so a wrong blob never ends cleanly.
func (fw *Follower) Reader(ctx context.Context, offset int64) io.Reader {
	return &reader{fw: fw, f: fw.f, ctx: ctx, pos: offset}
}

// Close releases the follower's hold on the temp file.
func (fw *Follower) Close() error {
	fw.once.Do(func() {
		fw.f.release()
		fw.mu.Lock()
		for _, c := range fw.direct {
			c.Close()
		}
		fw.mu.Unlock()
	})
	return nil
}

type reader struct {
	fw     *Follower
	f      *fill
	ctx    context.Context
	pos    int64
	direct io.Reader // set when the fill stopped storing (ErrNoSpace, ErrTooLarge)
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.direct != nil {
		n, err := r.direct.Read(p)
		r.pos += int64(n)
		return n, err
	}
	f := r.f
	for {
		f.mu.Lock()
		n, size, done, verified, err, wake := f.n, f.size, f.done, f.verified, f.err, f.wake
		f.mu.Unlock()
		// A fill that fails after its bytes were verified (storing them
		// failed) still has a correct temp file to read from.
		if done && err != nil && !verified {
			if errors.Is(err, ErrNoSpace) || errors.Is(err, ErrTooLarge) {
				return r.readDirect(p)
			}
			return 0, err
		}
		if !verified && size > 0 && n >= size {
			// Hold the last byte back until the digest is checked: a client
			// that has every byte but the last cannot mistake a wrong blob
			// for a finished download, even if its reader stops at
			// Content-Length without asking for EOF. (Storing it, fsync and
			// rename, happens after; clients need not wait for that.)
			n = size - 1
		}
		if r.pos < n {
			if avail := n - r.pos; int64(len(p)) > avail {
				p = p[:avail]
			}
			m, rerr := f.file.ReadAt(p, r.pos)
			r.pos += int64(m)
			if rerr == io.EOF && m > 0 {
				rerr = nil
			}
			return m, rerr
		}
		if verified {
			return 0, io.EOF
		}
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// readDirect continues from the upstream at the reader's position after
// the fill stopped storing: the disk filled up, or a blob of unknown size
// outgrew the cache. These bytes are not hashed by wharf (the reader may
// have started mid-blob); the client checks the digest as it always does.
func (r *reader) readDirect(p []byte) (int, error) {
	body, _, err := r.f.open(r.ctx, r.pos)
	if err != nil {
		return 0, err
	}
	r.fw.mu.Lock()
	r.fw.direct = append(r.fw.direct, body)
	r.fw.mu.Unlock()
	r.direct = body
	return r.Read(p)
}
