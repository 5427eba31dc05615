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

// The defaults to configure segmented fetch with (Options).
const (
	DefaultSegmentThreshold = 16 << 20 // a 64 MiB layer in 4 ranges; see BenchmarkSegmentedFetch
	DefaultSegments         = 4
)

// minSegment is the least SegmentThreshold: a smaller one would cut a
// big blob into more requests than round trips are worth.
const minSegment = 64 << 10

// opened is an upstream body a fill holds open: the answer to the first
// ranged request (the start of the stream, or range 0 of a segmented
// fetch), or to a segment's.
type opened struct {
	body   io.ReadCloser
	size   int64
	cancel context.CancelFunc // ends the body's request (the stall timer's)
	// upTo > 0: the body is the range [0, upTo) of a blob of unknown
	// size; if it ends there cleanly, the stream goes on from upTo.
	upTo int64
}

// copyRanged asks for the blob's first SegmentThreshold bytes as a range.
// The answer decides the fill: a 206 of a bigger blob is the first segment
// of a segmented fetch; a 206 that holds the whole blob, or a 200 (the
// upstream ignored Range), is read as the one stream it is, as is a range
// of a blob of unknown size, which goes on in one stream where it ends.
// So no byte is asked for twice, and a small blob takes one request.
func (g *Group) copyRanged(f *fill, log logrus.FieldLogger) error {
	ctx, cancel := context.WithCancel(g.ctx) // every segment's; ended with the fill
	defer cancel()
	firstCtx, firstCancel := context.WithCancel(ctx)
	first := g.opts.SegmentThreshold
	body, size, whole, err := f.ranged(firstCtx, 0, first, true)
	if errors.Is(err, ErrNoRanges) {
		firstCancel()
		return g.copyVerified(f, nil, log)
	}
	if err != nil {
		firstCancel()
		return fmt.Errorf("fill %s: open upstream at 0: %w", f.d, err)
	}
	g.opts.Metrics.SegmentRequest("first")
	o := &opened{body: body, size: size, cancel: firstCancel}
	switch {
	case whole:
		g.opts.Metrics.FillSegmented("range_ignored")
		return g.copyVerified(f, o, log)
	case size < 0:
		o.upTo = first
		return g.copyVerified(f, o, log)
	case size <= first:
		return g.copyVerified(f, o, log)
	}
	if g.opts.Keep != nil && !g.opts.Keep(size) {
		// Too big to keep: staging it, from several ranges at once, would
		// only fill tmp/ (and evict good content on ENOSPC) for a blob
		// thrown away. Followers read it from the upstream instead, as a
		// blob of unknown size that outgrows the cache.
		o.body.Close()
		o.cancel()
		f.start(nil, size)
		return fmt.Errorf("fill %s: %d bytes, more than the cache keeps: %w", f.d, size, ErrTooLarge)
	}
	g.opts.Metrics.FillSegmented("segmented")
	return g.copySegments(ctx, cancel, f, o, log)
}

// copySegments fetches the blob, whose first range o holds, as segments
// (segment.go): it runs the workers, hashes the prefix as it grows in
// this goroutine, and returns once every worker ended. cancel ends ctx,
// every segment's.
func (g *Group) copySegments(ctx context.Context, cancel context.CancelFunc, f *fill, o *opened, log logrus.FieldLogger) error {
	file, err := g.opts.Sink.TempFile()
	if err != nil {
		o.body.Close()
		o.cancel()
		return err
	}
	f.start(file, o.size)
	v, err := oci.NewVerifier(f.d, o.size)
	if err != nil {
		o.body.Close()
		o.cancel()
		return fmt.Errorf("fill %s: %w", f.d, err)
	}
	r := &segmented{g: g, f: f, log: log, ctx: ctx, cancel: cancel, size: o.size, v: v,
		lay: plan(o.size, g.opts.SegmentThreshold, g.opts.Segments), active: map[int64]*segment{}}
	var wg sync.WaitGroup
	workers := int(min(int64(g.opts.Segments), r.lay.count))
	wg.Add(workers)
	first := r.take() // range 0, its body open
	go func() {
		defer wg.Done()
		r.work(first, o)
	}()
	for range workers - 1 {
		go func() {
			defer wg.Done()
			r.work(r.take(), nil)
		}()
	}
	if err := r.verify(); err != nil {
		r.fail(err)
	}
	wg.Wait()
	if err := r.failure(); err != nil {
		return err
	}
	if err := v.Verify(); err != nil {
		return fmt.Errorf("fill: upstream sent %w", upstreamMismatch(err))
	}
	return nil
}

// layout is plan's cut of [0, size): range 0 is [0, first), the others
// chunk bytes each (the last fewer). It is arithmetic, so a fill holds
// state only for the ranges in flight, whatever total the upstream
// claims.
type layout struct {
	size, first, chunk int64
	count              int64 // ranges, the first included
}

// span is range i, [start, end).
func (l layout) span(i int64) (start, end int64) {
	if i == 0 {
		return 0, l.first
	}
	start = l.first + (i-1)*l.chunk
	return start, start + min(l.chunk, l.size-start)
}

// plan cuts [0, size) into the first range [0, first) and the rest in k
// equal ranges. Fewer, bigger requests are better (each costs a round
// trip), but no range should be much bigger than the first, so that the
// workers finish together and the prefix followers read keeps moving: k
// is the least of N-1, 2N-1, 3N-1, … (N workers) that keeps them under
// 1.25×first. The other N-1 workers take the first N-1 ranges while the
// first worker reads the first range, about as long; then all N take N
// at a time. The slack spares a blob just over a multiple of first a
// tail range of a few bytes. size > first.
func plan(size, first int64, workers int) layout {
	rest, n := size-first, int64(workers)
	k := n - 1
	if least := ceilDiv(rest, first+first/4); least > k {
		k += ceilDiv(least-k, n) * n
	}
	chunk := ceilDiv(rest, k)
	return layout{size: size, first: first, chunk: chunk, count: 1 + ceilDiv(rest, chunk)}
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0, without overflow near MaxInt64.
func ceilDiv(a, b int64) int64 {
	if a == 0 {
		return 0
	}
	return 1 + (a-1)/b
}
