package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/oci"
)

// segment is a range [start, end) of the blob that a worker took; n
// bytes of it are written, in order, by that one worker. n changes under
// segmented.mu; the worker, its only writer, reads it without the lock.
type segment struct {
	start, end int64
	n          int64
}

// segmented is one segmented fetch: workers take ranges in order and
// write them where they belong in the temp file; range 0's worker hashes
// it as it streams, the fill's goroutine hashes the rest of the
// contiguous prefix as it grows (reading back what was written ahead),
// and followers see that prefix only (fill.n).
type segmented struct {
	g      *Group
	f      *fill
	log    logrus.FieldLogger
	ctx    context.Context
	cancel context.CancelFunc
	size   int64
	lay    layout
	v      *oci.Verifier // range 0's worker's until range 0 is complete, then verify's

	mu     sync.Mutex
	next   int64              // the first range no worker took
	done   int64              // ranges before this one are complete
	active map[int64]*segment // ranges taken, from done on
	err    error              // the first failure; the others are its echoes
}

// work fetches seg (with its body already open, if o is set), then the
// next segments no one took, until none is left or the fetch failed.
func (r *segmented) work(seg *segment, o *opened) {
	buf := make([]byte, bodyBuf)
	for seg != nil {
		if err := r.fetch(seg, o, buf); err != nil {
			r.fail(err)
			return
		}
		o, seg = nil, r.take()
	}
}

// take is the next range no worker took, or nil when none is left or
// the fetch failed. It waits while that range is 2N ranges (N workers)
// past the contiguous prefix: bytes written ahead of a range that
// trickles are bounded, and followers, who see the prefix only, are
// not left waiting while the rest of the blob lands.
func (r *segmented) take() *segment {
	window := 2 * int64(r.g.opts.Segments)
	for {
		_, wake := r.f.progressed() // before looking: the prefix moving on closes it
		r.mu.Lock()
		if r.next >= r.lay.count || r.err != nil {
			r.mu.Unlock()
			return nil
		}
		if r.next < r.done+window {
			start, end := r.lay.span(r.next)
			seg := &segment{start: start, end: end}
			r.active[r.next] = seg
			r.next++
			r.mu.Unlock()
			return seg
		}
		r.mu.Unlock()
		select {
		case <-wake:
		case <-r.ctx.Done():
			return nil
		}
	}
}

// fetch writes seg, resuming a broken or short body from its last byte
// written, while the fill's resumes last.
func (r *segmented) fetch(seg *segment, o *opened, buf []byte) error {
	put := func(p []byte) error { return r.put(seg, p) }
	backoff := r.g.opts.ResumeBackoff
	for attempt := 0; ; attempt++ {
		pos := seg.start + seg.n // seg.n is only written by this goroutine
		if o == nil {
			var err error
			if o, err = r.open(pos, seg.end-pos, attempt); err != nil {
				return err
			}
		}
		readErr, writeErr := r.g.readBody(o.body, o.cancel, buf, put)
		o.body.Close()
		o.cancel()
		o = nil
		if writeErr != nil {
			return writeErr
		}
		if readErr == nil && seg.start+seg.n == seg.end {
			return nil
		}
		if readErr == nil {
			readErr = io.ErrUnexpectedEOF // a short range: resumed as a broken one
		}
		what := fmt.Sprintf("bytes %d-%d", seg.start, seg.end-1)
		if err := r.g.retry(r.ctx, r.f, &backoff, what, seg.start+seg.n, readErr, r.log); err != nil {
			return err
		}
	}
}

// open asks for length bytes from pos; an answer that is not that range
// of this blob fails the fill.
func (r *segmented) open(pos, length int64, attempt int) (*opened, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	body, size, whole, err := r.f.ranged(ctx, pos, length, false)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fill %s: open upstream at %d: %w", r.f.d, pos, err)
	}
	kind := "segment"
	if attempt > 0 {
		kind = "resume"
	}
	r.g.opts.Metrics.SegmentRequest(kind)
	switch {
	case whole:
		err = fmt.Errorf("fill %s: the upstream ignored Range for bytes %d-%d, having honoured it for the first", r.f.d, pos, pos+length-1)
	case size >= 0 && size != r.size:
		err = fmt.Errorf("fill %s: upstream size changed from %d to %d: %w", r.f.d, r.size, size, ErrSizeMismatch)
	}
	if err != nil {
		body.Close()
		cancel()
		return nil, err
	}
	return &opened{body: body, size: size, cancel: cancel}, nil
}

// put writes a chunk of seg's body where it belongs in the temp file,
// hashing it first if seg is range 0, which arrives in order.
func (r *segmented) put(seg *segment, p []byte) error {
	pos := seg.start + seg.n
	if pos+int64(len(p)) > seg.end {
		return fmt.Errorf("fill %s: the upstream sent more than bytes %d-%d: %w", r.f.d, seg.start, seg.end-1, ErrSizeMismatch)
	}
	if seg.start == 0 {
		if _, err := r.v.Write(p); err != nil {
			return fmt.Errorf("fill: upstream sent %w", upstreamMismatch(err))
		}
	}
	if _, err := r.f.file.WriteAt(p, pos); err != nil {
		return r.f.writeError(err)
	}
	r.progress(seg, int64(len(p)))
	return nil
}

// progress counts n more bytes of seg and moves the contiguous prefix
// over every range now complete, publishing it to followers.
func (r *segmented) progress(seg *segment, n int64) {
	r.mu.Lock()
	seg.n += n
	var landed int64
	for r.done < r.lay.count {
		s := r.active[r.done]
		if s == nil {
			landed, _ = r.lay.span(r.done)
			break
		}
		landed = s.start + s.n
		if landed < s.end {
			break
		}
		delete(r.active, r.done)
		r.done++
	}
	r.mu.Unlock()
	r.f.publish(landed)
}

// verify hashes the prefix past range 0 (which its worker hashed) in
// order as it grows, reading back from the file what the workers wrote,
// until the whole blob is hashed or the fetch failed. It starts once
// range 0 is complete: the prefix reaches past it only then.
func (r *segmented) verify() error {
	buf := make([]byte, bodyBuf)
	hashed := r.lay.first
	for hashed < r.size {
		landed, wake := r.f.progressed()
		for hashed < landed {
			m, err := r.f.file.ReadAt(buf[:min(int64(len(buf)), landed-hashed)], hashed)
			if m > 0 {
				if _, verr := r.v.Write(buf[:m]); verr != nil {
					return fmt.Errorf("fill: upstream sent %w", upstreamMismatch(verr))
				}
				hashed += int64(m)
			}
			if err != nil && !(errors.Is(err, io.EOF) && m > 0) {
				return fmt.Errorf("fill %s: read back temp file at %d: %w", r.f.d, hashed, err)
			}
		}
		if hashed >= r.size {
			break
		}
		select {
		case <-wake:
		case <-r.ctx.Done():
			return fmt.Errorf("fill %s: %w", r.f.d, r.ctx.Err())
		}
	}
	return nil
}

// fail keeps the first error and stops every segment.
func (r *segmented) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *segmented) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
