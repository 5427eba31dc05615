package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
)

var (
	// ErrDigestMismatch: the upstream's bytes did not hash to the digest asked for.
	ErrDigestMismatch = errors.New("fill: digest mismatch")
	// ErrSizeMismatch: the upstream sent more or fewer bytes than it announced.
	ErrSizeMismatch = errors.New("fill: size mismatch")
	// ErrCommitted: no fill is running because the content is already stored.
	ErrCommitted = errors.New("fill: already stored")
	// ErrStalled: the upstream sent nothing for StallTimeout.
	ErrStalled = errors.New("fill: upstream stalled")
	// ErrNoSpace: the disk filled up. Followers then read the rest straight
	// from the upstream; nothing is kept.
	ErrNoSpace = errors.New("fill: no space left on device")
	// ErrTooLarge: a blob whose size the upstream did not announce grew
	// past what Keep allows, or one to be fetched in segments whose size
	// Keep refuses. Nothing is kept; followers read the rest straight
	// from the upstream, as after ErrNoSpace.
	ErrTooLarge = errors.New("fill: blob larger than the cache")
	// ErrNoRanges: a RangeSource says, having asked nothing, that this
	// blob is better read as one stream; the fill opens it with its
	// Source instead.
	ErrNoRanges = errors.New("fill: no ranges of this blob from this source")
)

// Source opens the blob's bytes starting at offset. size is the blob's total
// size, or -1 when the upstream did not say.
type Source func(ctx context.Context, offset int64) (body io.ReadCloser, size int64, err error)

// RangeSource opens length bytes of the blob from offset (fewer where the
// blob ends first), and returns the blob's total size (-1 if unknown).
// whole says the upstream ignored the range: body is then the whole blob
// from byte 0 and size its length (-1 if unknown). first marks the
// fill's first request, from 0, the only one made before the size is
// known (a 416 to it is an empty blob; ErrNoRanges may answer it); a
// resume of range 0 from byte 0 is not first.
type RangeSource func(ctx context.Context, offset, length int64, first bool) (body io.ReadCloser, size int64, whole bool, err error)

// Sink is where fills write: local temp files that are put under their
// digest once verified. A cache.Store is one.
type Sink interface {
	TempFile() (*os.File, error)
	Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error
	Stat(ctx context.Context, d digest.Digest) (int64, error)
}

// Options configure a Group.
type Options struct {
	Sink Sink
	// Committed is called after a verified blob is in place (to index it).
	Committed func(d digest.Digest, size int64) error
	// Ended is called as a fill ends, committed or not (after Committed),
	// before it leaves the table: no other fill of d runs until it returns.
	Ended func(d digest.Digest)
	// Resumes bounds how often one fill reopens a broken upstream body:
	// in all, for a fill fetched in segments (they share the budget).
	// Default 3.
	Resumes int
	// ResumeBackoff is the pause before a resume, doubled each time. Default 200ms.
	ResumeBackoff time.Duration
	// StallTimeout aborts an upstream read that delivers nothing for this
	// long (then the fill resumes). Default 30s.
	StallTimeout time.Duration
	// Keep decides, once the upstream announced the size (-1 if it did
	// not), whether the blob is stored. A blob that is not kept is still
	// fetched once and streamed to every follower. When the size is
	// unknown, Keep is asked again with the bytes the next write would
	// make: once it says no, the fill stops storing (ErrTooLarge) and
	// followers continue from the upstream, so a blob without a
	// Content-Length never puts more than Keep allows in the temp
	// directory. A blob that would be fetched in segments is not fetched
	// at all when Keep refuses its size: followers read it from the
	// upstream (ErrTooLarge). Default: keep all.
	Keep func(size int64) bool
	// NoSpace is called when a fill hits a full disk (to start eviction).
	NoSpace func()
	// SegmentThreshold turns on segmented fetch for fills started with a
	// RangeSource: a blob larger than this is fetched as up to Segments
	// concurrent ranges written into its temp file (segment.go). It is
	// also the size of the first range and about that of the others, so
	// a blob up to it takes one request. 0 or negative: off (one stream).
	// DefaultSegmentThreshold is the value to configure by default.
	SegmentThreshold int64
	// Segments is how many ranges of one blob are fetched at once.
	// 0: DefaultSegments; 1: off.
	Segments int
	Metrics  *metrics.Metrics
	Logger   logrus.FieldLogger
}

// Group runs fills and lets clients follow them.
type Group struct {
	ctx  context.Context
	opts Options
	wg   sync.WaitGroup

	mu    sync.Mutex
	fills map[digest.Digest]*fill
}

// NewGroup returns a Group whose fills run under ctx: cancelling it stops
// them all (Wait then returns).
func NewGroup(ctx context.Context, opts Options) (*Group, error) {
	if opts.Sink == nil {
		return nil, errors.New("fill: no sink")
	}
	if opts.Resumes == 0 {
		opts.Resumes = 3
	}
	if opts.ResumeBackoff == 0 {
		opts.ResumeBackoff = 200 * time.Millisecond
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = 30 * time.Second
	}
	if opts.Segments == 0 {
		opts.Segments = DefaultSegments
	}
	if opts.SegmentThreshold > 0 {
		opts.SegmentThreshold = max(opts.SegmentThreshold, minSegment)
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	return &Group{ctx: ctx, opts: opts, fills: map[digest.Digest]*fill{}}, nil
}

// Wait blocks until every fill has ended.
func (g *Group) Wait() { g.wg.Wait() }

// Follow joins the fill of d if one is running, and returns nil otherwise.
func (g *Group) Follow(d digest.Digest) *Follower {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.fills[d]; f != nil {
		return f.follow()
	}
	return nil
}

// Join follows the fill of d, starting one from open if none runs. It
// returns ErrCommitted when d is already stored, so the caller serves the
// file instead. The stat under the lock closes the race with a fill that
// commits and leaves the table between the caller's own check and this call
// (a fill leaves the table only after its rename); it runs on misses only.
func (g *Group) Join(d digest.Digest, open Source) (*Follower, error) {
	fw, _, err := g.Start(d, open)
	return fw, err
}

// Start is Join that also tells whether this call started the fill (so the
// upstream was asked with the caller's own open) or joined one running.
func (g *Group) Start(d digest.Digest, open Source) (fw *Follower, started bool, err error) {
	return g.StartRanged(d, open, nil)
}

// StartRanged is Start for an upstream that can also send ranges of the
// blob: with ranged not nil and Options.SegmentThreshold set, a big blob is
// fetched in concurrent segments (segment.go). ranged asks the first
// range and, for a segmented blob, the others and their resumes; open
// reads on where the blob comes in one stream, and serves followers after
// a full disk.
func (g *Group) StartRanged(d digest.Digest, open Source, ranged RangeSource) (fw *Follower, started bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.fills[d]; f != nil {
		return f.follow(), false, nil
	}
	if _, err := g.opts.Sink.Stat(g.ctx, d); err == nil {
		return nil, false, ErrCommitted
	}
	if err := g.ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("fill: shutting down: %w", err)
	}
	f := &fill{d: d, size: -1, refs: 1, wake: make(chan struct{}), open: open, ranged: ranged}
	g.fills[d] = f
	g.wg.Add(1)
	g.opts.Metrics.FillStarted()
	go g.run(f)
	return f.follow(), true, nil
}

// run is the fill's goroutine: it owns the temp file until it ends.
func (g *Group) run(f *fill) {
	defer g.wg.Done()
	log := g.opts.Logger.WithField("digest", f.d)
	var err error
	if f.ranged != nil && g.opts.SegmentThreshold > 0 && g.opts.Segments > 1 {
		err = g.copyRanged(f, log)
	} else {
		err = g.copyVerified(f, nil, log)
	}
	if err == nil {
		f.verify()
	}
	keep := g.opts.Keep == nil || g.opts.Keep(f.size)
	if err == nil && keep {
		err = g.commit(f)
	}
	result := "ok"
	switch {
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrSizeMismatch):
		result = "digest_mismatch"
	case errors.Is(err, ErrNoSpace):
		result = "no_space"
		g.opts.Metrics.StoreError("enospc")
		if g.opts.NoSpace != nil {
			g.opts.NoSpace()
		}
	case errors.Is(err, ErrTooLarge):
		result = "not_kept"
		g.opts.Metrics.StoreError("too_large")
		log.WithField("bytes", f.written()).Info("blob larger than the cache: followers read it from the upstream, not kept")
	case err != nil:
		result = "error"
	case !keep:
		result = "not_kept"
		g.opts.Metrics.StoreError("too_large")
		log.WithField("size", f.size).Info("blob larger than the cache: streamed, not kept")
	}
	if (err != nil || !keep) && f.hasFile() {
		os.Remove(f.file.Name()) // followers read on through the open file
	}
	switch {
	case errors.Is(err, ErrTooLarge):
	case err != nil && f.hasFile():
		log.WithError(err).WithField("bytes", f.written()).Warn("blob fill failed; nothing kept")
	case err != nil:
		// The upstream refused before sending a byte (404, 401, …): the
		// client hears it, and proxy logs what deserves a log.
		log.WithError(err).Debug("blob fill not started")
	}
	// Out of the table before the followers hear the end: a client that
	// retries at once after a failure starts a new fill instead of joining
	// this one and reading its error again.
	if g.opts.Ended != nil {
		g.opts.Ended(f.d)
	}
	g.mu.Lock()
	delete(g.fills, f.d)
	g.mu.Unlock()
	f.finish(err)
	f.release()
	g.opts.Metrics.FillDone(result)
}

func (g *Group) commit(f *fill) error {
	if err := g.opts.Sink.Put(g.ctx, f.file, f.d, f.written()); err != nil {
		return err
	}
	if g.opts.Committed != nil {
		if err := g.opts.Committed(f.d, f.written()); err != nil {
			// The file is verified and in place; the index catches up on
			// the next start. Serving it is safe.
			g.opts.Logger.WithError(err).WithField("digest", f.d).Warn("index update after fill failed")
		}
	}
	return nil
}
