package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/upstream"
)

// Blob is a blob ready to be read: either a verified file (a hit) or a fill
// in progress that the caller follows. Close it when done.
type Blob struct {
	Digest  digest.Digest
	Size    int64 // -1 when a fill's upstream did not announce it
	ModTime time.Time

	// File is the verified content on a hit; serve it with
	// http.ServeContent. From the disk store it is an *os.File, which
	// ServeContent sends with sendfile.
	File Content
	// Fill is set on a miss: read it with Fill.Reader, which fails rather
	// than ends if the bytes turn out wrong.
	Fill *fill.Follower

	release func() // lets eviction have the file again
}

// Close releases the file or the follower.
func (b *Blob) Close() error {
	if b.File != nil {
		err := b.File.Close()
		if b.release != nil {
			b.release() // once: a second Close must not release another reader's hold
			b.release = nil
		}
		return err
	}
	if b.Fill != nil {
		return b.Fill.Close()
	}
	return nil
}

var _ BlobRanger = (*upstream.Client)(nil)

// ErrNoRanges is what a BlobRanger answers, having asked nothing, for a
// blob it would rather send as one stream.
var ErrNoRanges = fill.ErrNoRanges

// BlobRanger is an optional capability of an Origin (found by type
// assertion): asking for a range of a blob's bytes, which lets the fill
// of a big blob fetch it over several connections at once
// (Options.SegmentThreshold). whole says the answer is the whole blob
// from byte 0 (the upstream ignored Range), which the fill then reads as
// one stream. first marks a fill's first request, before the size is
// known (fill.RangeSource). GetBlobRange may return ErrNoRanges, having asked nothing,
// for a blob better read as one stream (package peer: one another
// replica fills); the fill then asks GetBlob. upstream.Client is one.
type BlobRanger interface {
	GetBlobRange(ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (body io.ReadCloser, size int64, whole bool, err error)
}

// Blob opens d for reading. A miss starts (or joins) the one fill of d and
// returns once the upstream has answered, before any byte was stored.
func (c *Cache) Blob(ctx context.Context, repo Repo, d digest.Digest) (*Blob, error) {
	b, err := c.storedBlob(ctx, d)
	if err == nil {
		if err := c.mayServe(ctx, repo, d, false); err != nil {
			b.Close()
			return nil, err
		}
		c.opts.Metrics.Hit("blob")
		c.access.touch(d, c.opts.Now())
		return b, nil
	}
	if down := c.storeDown(err); down != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, d, down)
	}
	c.opts.Metrics.Miss("blob")
	o, err := c.origin(ctx, repo)
	if err != nil {
		return nil, err
	}
	fw, started, err := c.startFill(o, repo, d)
	if errors.Is(err, fill.ErrCommitted) {
		return c.Blob(ctx, repo, d) // stored meanwhile: a hit, checked as one
	}
	if err != nil {
		return nil, err
	}
	size, err := fw.Ready(ctx)
	if err != nil {
		fw.Close()
		return nil, blobError(repo, d, err)
	}
	if !started {
		// Another's fill, answered: started under repo, its upstream
		// vouched for repo (startFill); under another repository, this
		// one must hold d too.
		if err := c.mayFollow(ctx, repo, d); err != nil {
			fw.Close()
			return nil, err
		}
	}
	return &Blob{Digest: d, Size: size, ModTime: c.opts.Now(), Fill: fw}, nil
}

// startFill starts the fill of d from o under repo's name, or joins the
// one running; fill.ErrCommitted when d is stored. The upstream's first
// answer under repo's name vouches for repo before the fill is marked
// started, so a reader of repo joining it asks nothing more; repo is
// linked only when the bytes are verified and stored (fillvouch.go).
func (c *Cache) startFill(o Origin, repo Repo, d digest.Digest) (*fill.Follower, bool, error) {
	var answered atomic.Bool
	vouched := func(err error) {
		if err == nil && !answered.Swap(true) {
			c.vouches.add(d, repo, true)
		}
	}
	open := func(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
		body, size, err := o.GetBlob(ctx, repo.Path, d, offset)
		vouched(err)
		return body, size, err
	}
	var ranged fill.RangeSource
	if r, ok := o.(BlobRanger); ok {
		ranged = func(ctx context.Context, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
			body, size, whole, err := r.GetBlobRange(ctx, repo.Path, d, offset, length, first)
			vouched(err)
			return body, size, whole, err
		}
	}
	return c.fills.StartRanged(d, open, ranged)
}

// StatBlob returns d's size without fetching it: from the store, a running
// fill, or a HEAD to the upstream.
func (c *Cache) StatBlob(ctx context.Context, repo Repo, d digest.Digest) (int64, error) {
	size, err := c.store.Stat(ctx, d)
	if err == nil {
		if err := c.mayServe(ctx, repo, d, false); err != nil {
			return 0, err
		}
		c.opts.Metrics.Hit("blob")
		c.access.touch(d, c.opts.Now())
		return size, nil
	}
	if down := c.storeDown(err); down != nil {
		return 0, fmt.Errorf("blob %s@%s: %w", repo, d, down)
	}
	if fw := c.fills.Follow(d); fw != nil {
		defer fw.Close()
		size, ready := fw.Ready(ctx) // answered, a fill under repo vouched for it (startFill)
		if err := c.mayFollow(ctx, repo, d); err != nil {
			return 0, err
		}
		if ready == nil && size >= 0 {
			return size, nil
		}
	}
	c.opts.Metrics.Miss("blob")
	o, err := c.origin(ctx, repo)
	if err != nil {
		return 0, err
	}
	size, err = o.HeadBlob(ctx, repo.Path, d)
	if err != nil {
		return 0, blobError(repo, d, err)
	}
	return size, nil
}

// storedBlob opens a verified file and holds it against eviction until the
// Blob is closed.
func (c *Cache) storedBlob(ctx context.Context, d digest.Digest) (*Blob, error) {
	c.hold(d)
	f, err := c.store.Open(ctx, d)
	if err != nil {
		c.release(d)
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		c.release(d)
		return nil, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return &Blob{Digest: d, Size: fi.Size(), ModTime: fi.ModTime(), File: f, release: func() { c.release(d) }}, nil
}

func blobError(repo Repo, d digest.Digest, err error) error {
	if errors.Is(err, upstream.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s@%s: %w: %w", repo, d, ErrNotFound, err)
	}
	return fmt.Errorf("blob %s@%s: %w", repo, d, err)
}
