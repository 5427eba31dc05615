package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/metrics"
)

// Content is stored content open for reading: the same type as
// cache.Content, spelled here so that this package need not import cache.
type Content = interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// Shared is the shared tier: cache.Store's methods but TempFile (staging
// is the local tier's), which cache/s3 implements, and cache/disk (the
// tests' shared tier).
type Shared interface {
	Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error
	Open(ctx context.Context, d digest.Digest) (Content, error)
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	Delete(ctx context.Context, d digest.Digest) error
	Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
}

// Options tune a Store. Each field's zero value is its default.
type Options struct {
	// LocalMaxSize caps the bytes of the local tier. Past it, local copies
	// are removed, least recently opened first, down to LocalLowSize; their
	// shared copies stay. 0: no cap.
	LocalMaxSize int64
	// LocalLowSize is where eviction stops. Default 90% of LocalMaxSize,
	// so that one eviction makes room for more than the one copy that
	// passed the cap.
	LocalLowSize int64
	// Promotions bounds the background copies from the shared tier into
	// the local one running at once; an open that misses while all are
	// busy is served from the shared tier without starting one (a later
	// open of the same digest tries again). Default 4; NoPromotions (any
	// negative) starts none, and every miss is only read from the shared
	// tier.
	Promotions int
	Metrics    *metrics.Metrics
	Logger     logrus.FieldLogger
}

// NoPromotions is Options.Promotions for a Store that never copies
// content from the shared tier into the local one.
const NoPromotions = -1

// Store is a cache.Store over a local disk store (the hot tier) in front
// of a shared store. Build it with New; Close it before closing either
// tier.
type Store struct {
	local  *disk.Store
	shared Shared
	opts   Options
	log    logrus.FieldLogger

	// Promotions run under ctx, which Close cancels (under mu), and are
	// counted in wg, which Close waits on. None starts once ctx is done.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	used      usage                      // the local tier's copies, by last open
	promoting map[digest.Digest]bool     // digests being promoted
	promoted  func(digest.Digest, error) // test hook: a promotion ended

	gate atomic.Pointer[func(context.Context, digest.Digest) error] // GateShared
}

// New returns a Store over local and shared. It walks the local tier to
// learn what it holds (sizes; the order of last use starts over, all
// copies equally old), and evicts at once if that is past the cap (the cap
// may have been lowered since the last run).
func New(ctx context.Context, local *disk.Store, shared Shared, opts Options) (*Store, error) {
	if local == nil || shared == nil {
		return nil, errors.New("tier: a local and a shared store are both required")
	}
	if opts.LocalMaxSize < 0 || opts.LocalLowSize < 0 {
		return nil, errors.New("tier: negative size in options")
	}
	if opts.LocalLowSize == 0 || opts.LocalLowSize > opts.LocalMaxSize {
		opts.LocalLowSize = opts.LocalMaxSize / 10 * 9
	}
	if opts.Promotions == 0 {
		opts.Promotions = 4
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	s := &Store{local: local, shared: shared, opts: opts, log: opts.Logger,
		used: newUsage(), promoting: map[digest.Digest]bool{}}
	err := local.Walk(ctx, func(d digest.Digest, size int64) error {
		s.used.add(d, size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tier: walk the local tier: %w", err)
	}
	// Promotions outlive the open that started them, but not the Store.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.evict(ctx)
	return s, nil
}

// Close stops the promotions under way and waits for them to end. The
// tiers stay open: their owner closes them after.
func (s *Store) Close() error {
	s.mu.Lock()
	s.cancel() // under the lock: promote sees it before it adds to wg
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// TempFile stages in the local tier, so that keeping a Put's file locally
// is a rename.
func (s *Store) TempFile() (*os.File, error) { return s.local.TempFile() }

// Put makes f visible as d: in the shared tier first, and only once the
// shared tier has it does Put succeed, so that content acknowledged to a
// client survives the loss of this replica. Then the same file is kept in
// the local tier by a rename. A failure of the shared tier fails Put and
// leaves d nowhere; a failure of the local tier after it does not (d is
// stored: the local copy is only a cache of it).
//
// The shared store is given a descriptor of its own, opened on a hard link
// beside the staged file: a store may consume the staged path (S3's Put
// copies the bytes up and removes it; a disk store renames it into its
// own tree) and may move the descriptor's offset (a store that reads with
// Read rather than ReadAt). Through the link, f keeps its path for the
// local rename and its offset for whoever reads it, as cache.Store's
// contract promises. A link left by a crash sits beside the staged file,
// where the staged file's own sweep removes it (tmp/ at the disk store's
// Open; uploads/ at the upload sessions' recovery).
func (s *Store) Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	if err := s.putShared(ctx, f, d, size); err != nil {
		return err
	}
	if s.tooBig(size) {
		s.dropStaged(f, d, nil)
		return nil
	}
	if err := s.local.Put(ctx, f, d, size); err != nil {
		s.dropStaged(f, d, err)
		return nil
	}
	s.kept(ctx, d, size)
	return nil
}

// putShared puts f's bytes in the shared tier through a hard link.
func (s *Store) putShared(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	link := f.Name() + ".shared"
	if err := os.Link(f.Name(), link); err != nil {
		return fmt.Errorf("tier: put %s: link the staged file for the shared tier: %w", d, err)
	}
	defer os.Remove(link) // gone already when the shared store moved it
	g, err := os.Open(link)
	if err != nil {
		return fmt.Errorf("tier: put %s: %w", d, err)
	}
	defer g.Close()
	if err := s.shared.Put(ctx, g, d, size); err != nil {
		return fmt.Errorf("tier: put %s in the shared tier: %w", d, sharedErr("put", err))
	}
	return nil
}

// tooBig says whether content of size would not fit the local tier at
// all: keeping it would only evict everything else, itself included.
func (s *Store) tooBig(size int64) bool {
	return s.opts.LocalMaxSize > 0 && size > s.opts.LocalMaxSize
}

// dropStaged removes the staged path of content the shared tier holds but
// the local tier does not keep, as a successful Put must (its path is
// gone; f stays open). cause is why the local tier did not keep it.
func (s *Store) dropStaged(f *os.File, d digest.Digest, cause error) {
	if cause != nil {
		s.log.WithError(cause).WithField("digest", d).Warn("tier: not kept in the local tier; served from the shared tier")
	}
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.WithError(err).WithField("digest", d).Warn("tier: remove staged file")
	}
}

// Stat asks the local tier, then the shared one.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if size, err := s.local.Stat(ctx, d); err == nil {
		return size, nil
	}
	size, err := s.shared.Stat(ctx, d)
	return size, sharedErr("stat", err)
}

// Delete removes d from the shared tier, then from the local one. In this
// order a failure leaves d whole where it was: still in the shared tier,
// or still served locally and deleted again by a retry.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := s.shared.Delete(ctx, d); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	if err := s.local.Delete(ctx, d); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	s.forget(d)
	return nil
}

// DropLocal removes d's local copy alone: the shared tier lost d (the
// leader of eviction deleted it as a push linked it), and the copy must
// not make a HEAD or a mount find what the bucket lacks. The shared tier
// is left alone: another replica may have put d there again meanwhile.
func (s *Store) DropLocal(ctx context.Context, d digest.Digest) error {
	if err := s.local.Delete(ctx, d); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	s.forget(d)
	return nil
}

// StatShared returns the size of d in the shared tier alone: what the
// cache pins and acknowledges must be there, not only in a local copy.
func (s *Store) StatShared(ctx context.Context, d digest.Digest) (int64, error) {
	size, err := s.shared.Stat(ctx, d)
	return size, sharedErr("stat", err)
}

// Verified says that everything Walk lists was verified before it was
// put (every replica verifies before its Put), so the cache's
// reconciliation need not read the bucket back to trust it.
func (s *Store) Verified() bool { return true }

// Walk lists the shared tier, which holds everything the store holds. A
// local copy of content the shared tier lost (another replica deleted it)
// is not listed: it is a leftover that eviction ages out.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	return s.shared.Walk(ctx, fn)
}
