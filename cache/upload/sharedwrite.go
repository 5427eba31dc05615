package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wharf-mirror/wharf/cache/records"
)

// writeShared appends a chunk to a shared session (PATCH). The caller
// holds id's lock.
func (s *Sessions) writeShared(ctx context.Context, repo, id string, c Chunk) (Status, error) {
	st, ver, err := s.load(ctx, repo, id)
	if err != nil {
		return Status{}, err
	}
	st, _, err = s.appendShared(ctx, id, st, ver, c)
	return Status{ID: id, Size: st.Size}, err
}

// appendShared streams c into a new chunk object, hashing it on from the
// state's running sha256 (and copying it to the local file while that
// holds the whole session), then replaces the state read at ver. It
// returns the state that counts and its version: the new ones, or st and
// ver when nothing was acknowledged.
func (s *Sessions) appendShared(ctx context.Context, id string, st sharedState, ver string, c Chunk) (sharedState, string, error) {
	c, err := checkChunk(st.Size, c)
	if err != nil {
		return st, ver, err
	}
	if c.Body == nil || c.Length == 0 {
		return st, ver, nil
	}
	if len(st.Chunks) >= maxChunks {
		return st, ver, fmt.Errorf("upload %s: %d chunks, the most a session takes: %w", id, maxChunks, ErrInvalid)
	}
	keep, err := s.keepAlive(ctx, id, st, ver)
	if err != nil {
		return st, ver, err
	}
	h, known := resumeHashOf(st.Size, st.HashState)
	lc := s.copyOf(id)
	local := s.openCopy(id, lc, st)
	if local != nil {
		defer local.f.Close()
	}
	src := c.Body
	if c.Length > 0 {
		src = io.LimitReader(src, c.Length)
	}
	if s.buffered(c.Length) { // it holds scarce memory: it must fill it
		src = &slowBody{r: src, now: s.bufs.now}
	}
	body := &bodyReader{r: src}
	sinks := []io.Writer{h}
	if local != nil {
		sinks = append(sinks, local)
	}
	name := chunkName(len(st.Chunks))
	n, err := s.putChunk(ctx, id, st.Client, name, io.TeeReader(body, io.MultiWriter(sinks...)), c.Length)
	ver = keep.done()
	switch {
	case errors.Is(err, errNoBuffer): // the client left while it waited
		return st, ver, err
	case errors.Is(err, ErrBusy): // no buffer in time: nothing written
		s.opts.Metrics.LimitHit("chunk_buffers")
		return st, ver, err
	case errors.Is(body.err, errTooSlow):
		s.opts.Metrics.LimitHit("chunk_fill_rate")
		err = fmt.Errorf("body cut short: %w: %w", ErrSizeInvalid, body.err)
	case err == nil && c.Length >= 0 && n != c.Length:
		err = fmt.Errorf("body ended after %d of %d bytes: %w", n, c.Length, ErrSizeInvalid)
	case err != nil && body.err != nil:
		err = fmt.Errorf("body cut short: %w: %w", ErrSizeInvalid, body.err)
	case err != nil && c.Length >= 0 && body.eof && body.n < c.Length:
		err = fmt.Errorf("body ended after %d of %d bytes: %w", body.n, c.Length, ErrSizeInvalid)
	case err != nil:
		s.opts.Metrics.StoreError("write")
		err = unavailable(id, err)
	}
	if err != nil {
		s.forgetChunk(ctx, id, name)
		s.dropCopy(id, lc)
		return st, ver, err
	}
	if n == 0 { // an empty body counts for nothing, as on one node
		s.forgetChunk(ctx, id, name)
		return st, ver, nil
	}
	next := st.clone()
	next.Chunks = append(next.Chunks, chunkRef{Name: name, Size: n})
	next.Size += n
	next.HashState = nil
	if known {
		next.HashState = hashState(h)
	}
	next.Updated = s.opts.Now()
	nextVer, err := s.putState(ctx, id, next, records.IfMatch(ver))
	if err != nil && !errors.Is(err, records.ErrNotFound) && ctx.Err() == nil {
		// The store may have written the state before failing to say so,
		// and a retry of the write then conflicts with the write itself:
		// a state that names this chunk is this request's.
		if cur, curVer, rerr := s.readState(ctx, id); rerr == nil && !cur.Ended && cur.names(name) {
			next, nextVer, err = cur, curVer, nil
		}
	}
	if err != nil {
		s.dropCopy(id, lc)
		if !errors.Is(err, records.ErrConflict) && !errors.Is(err, records.ErrNotFound) {
			// Unresolved: the chunk stays (it goes with its session) in
			// case it counts. The client asks for the Range and resumes.
			s.opts.Metrics.StoreError("write")
			return st, ver, unavailable(id, err)
		}
		// Another replica appended first, or the session ended: this
		// chunk never counted. A state that could not be read back may
		// name it, so the chunk then stays.
		cur, curVer, lerr := s.load(ctx, st.Repo, id)
		if lerr == nil || errors.Is(lerr, ErrUnknown) {
			s.forgetChunk(ctx, id, name)
		}
		if lerr != nil {
			return st, ver, lerr
		}
		return cur, curVer, &RangeError{Size: cur.Size}
	}
	if local != nil && local.err == nil {
		lc.chunks, lc.size = append(lc.chunks, name), lc.size+n
	} else {
		s.dropCopy(id, lc)
	}
	return next, nextVer, nil
}

// forgetChunk deletes a chunk that does not count, whether or not the
// client is still there. One left behind goes with its session.
func (s *Sessions) forgetChunk(ctx context.Context, id, name string) {
	if err := s.opts.Shared.Chunks.Delete(context.WithoutCancel(ctx), id, name); err != nil {
		s.log.WithError(err).WithField("upload", id).Debug("remove a chunk that does not count")
	}
}

// bodyReader is a request body as the chunk store reads it: how much it
// gave, whether it ended, and its own failure (a client gone mid-body)
// apart from the store's.
type bodyReader struct {
	r   io.Reader
	n   int64
	eof bool
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// copyWriter appends to the local copy; a failing local disk only ends
// the copy (the chunk object is what counts), never the request.
type copyWriter struct {
	f   *os.File
	err error
}

func (w *copyWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		_, w.err = w.f.Write(p)
	}
	return len(p), nil
}

// openCopy opens the local file to append to, if it holds the whole
// session so far; otherwise it drops it and returns nil.
func (s *Sessions) openCopy(id string, lc *localCopy, st sharedState) *copyWriter {
	if !lc.matches(st) {
		s.dropCopy(id, lc)
		return nil
	}
	f, err := os.OpenFile(s.path(id), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil
	}
	if err := f.Truncate(lc.size); err != nil {
		f.Close()
		return nil
	}
	if _, err := f.Seek(lc.size, io.SeekStart); err != nil {
		f.Close()
		return nil
	}
	return &copyWriter{f: f}
}
