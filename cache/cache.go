package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/upload"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
)

var (
	// ErrNotFound: neither the cache nor the upstream has it.
	ErrNotFound = errors.New("not found")
	// ErrUnknownUpstream: a repository names an upstream this cache has no origin for.
	ErrUnknownUpstream = errors.New("unknown upstream")

	// Why a blob fill failed, for callers that explain failures (the
	// status page): the upstream's bytes did not match their digest or
	// announced size, it stopped sending, or the disk filled up.
	ErrFillDigestMismatch = fill.ErrDigestMismatch
	ErrFillSizeMismatch   = fill.ErrSizeMismatch
	ErrFillStalled        = fill.ErrStalled
	ErrFillNoSpace        = fill.ErrNoSpace
)

// Errors of content sent to the store, by a client's push (package push)
// or an import: the sender's fault. proxy/errors.go maps each to its v2
// code.
var (
	// ErrDigestInvalid: the bytes received do not hash to the digest given,
	// or the digest's algorithm is not supported.
	ErrDigestInvalid = upload.ErrDigestInvalid
	// ErrSizeInvalid: the body was shorter or longer than announced.
	ErrSizeInvalid = upload.ErrSizeInvalid
	// ErrTooLarge: a manifest over oci.MaxManifestSize.
	ErrTooLarge = errors.New("content too large")
	// ErrManifestInvalid: not a manifest wharf accepts.
	ErrManifestInvalid = errors.New("manifest invalid")
	// ErrManifestBlobUnknown: a manifest references content not here.
	ErrManifestBlobUnknown = errors.New("manifest references unknown content")
	// ErrTagInvalid: a tag the reference grammar refuses.
	ErrTagInvalid = errors.New("tag invalid")
	// ErrEvicted: content a push linked was taken from the shared store
	// by the replica leading eviction as the push linked it. Nothing was
	// acknowledged and this replica forgot the content, so the client's
	// retry uploads it again (proxy's 503, which clients retry).
	ErrEvicted = errors.New("the content was evicted from the shared store as it was pushed; push it again")
)

// Origin is what the cache needs from an upstream registry.
type Origin interface {
	Name() string
	GetManifest(ctx context.Context, repo, ref string, accept []string) (*upstream.Manifest, error)
	HeadManifest(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, error)
	GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error)
	HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	Tags(ctx context.Context, repo string, n int, last string) ([]string, bool, error)
}

// Repo names a repository: the upstream it mirrors and its path there
// ("docker.io", "library/alpine").
type Repo struct {
	Upstream string
	Path     string
}

func (r Repo) String() string { return r.Upstream + "/" + r.Path }

// Options configure a Cache.
type Options struct {
	Dir string // data directory: blobs/, tmp/, index/, uploads/ (package push), quarantine/ (verify --repair)
	// Store keeps the content's bytes; nil is the disk store in Dir
	// (cache/disk). The index is in Dir either way. A Store given here
	// is the caller's: it closes it (cache/s3's has a Close) after the
	// Cache.
	Store   Store
	Origins []Origin      // upstreams, found by Name()
	TagTTL  time.Duration // how long a tag is trusted before revalidation
	// FetchTimeout bounds a manifest fetch that runs detached from its
	// client. Default 2m.
	FetchTimeout time.Duration
	// RevalidateTimeout is how long a client holding a cached tag waits
	// for its revalidation; past it the cached manifest is served (counted
	// stale) and the revalidation finishes in the background, under
	// FetchTimeout. Default 3s.
	RevalidateTimeout time.Duration
	// Resumes and StallTimeout tune blob fills (see fill.Options).
	Resumes      int
	StallTimeout time.Duration
	// SegmentThreshold: a blob larger than this is fetched from an
	// Origin that is a BlobRanger as Segments concurrent ranges (see
	// fill.Options; fill.DefaultSegmentThreshold, 16 MiB, is the value to
	// configure by default). 0 or negative: one stream per blob.
	SegmentThreshold int64
	// Segments is how many ranges of one blob are fetched at once.
	// 0: fill.DefaultSegments (4); 1: one stream.
	Segments int
	// MaxSize caps the bytes of stored content; 0 is unlimited. Eviction
	// starts above HighWatermark×MaxSize (default 0.95) and stops under
	// LowWatermark×MaxSize (default 0.85).
	MaxSize int64
	// SharedEviction says the Store is shared by the replicas of a
	// cluster: this cache evicts from it only while LeadEviction runs (one
	// replica at a time, under the cluster's lease), measuring usage by
	// walking the store every SharedEvictEvery (default 1m), since every
	// replica adds content to it.
	SharedEviction   bool
	SharedEvictEvery time.Duration
	HighWatermark    float64
	LowWatermark     float64
	// Replica is this replica's name in its cluster (its peer address),
	// which the records it shares about itself are keyed by (its reads:
	// sharedaccess.go) and its evicting records name. Empty alone.
	Replica string
	// Pins are tags eviction never removes (with everything they reference).
	Pins []Pin
	// Offline never contacts an upstream: content and tags are served from
	// the store only (cached tags without revalidation), and a miss is
	// ErrOffline. For air-gapped sites filled by wharf import.
	Offline bool
	// SharedUploads, when set, keeps upload sessions in the store the
	// replicas share (cache/upload's shared sessions), so that any replica
	// takes a push's next request. Zero: sessions are this node's.
	SharedUploads upload.Shared
	// Records are the records the replicas of a cluster share (shared.go
	// says which, and when each is read and written); nil is one node
	// alone, and nothing is shared. With Records and an empty index, Open
	// rebuilds the index from them.
	Records Records
	// RecordsReadTimeout bounds a read of Records a client waits on; past
	// it the local index answers. Default 2s.
	RecordsReadTimeout time.Duration
	// AccessReport is how often a replica with Records and a Replica
	// name reports its reads to the leader of eviction (sharedaccess.go).
	// Default 10s.
	AccessReport time.Duration
	// PushedReposEvery is how often, with Records, the repositories with
	// pushed tags are listed again (sharedrepos.go): the bound on how long
	// a push into a new repository that Announcer did not bring here can
	// be shadowed by a mirrored tag. Default 5s.
	PushedReposEvery time.Duration
	// Announcer, with Records, tells the other replicas of a first push
	// into a repository before it is acknowledged (package peer's
	// Client); nil without a cluster.
	Announcer Announcer
	// AccessFlush is how often access times are written to the index.
	// Default 10s.
	AccessFlush time.Duration
	Metrics     *metrics.Metrics
	Logger      logrus.FieldLogger
	Now         func() time.Time // clock; default time.Now
}

// Cache is the store. Open it, use it from many goroutines, Close it.
type Cache struct {
	opts    Options
	log     logrus.FieldLogger
	origins map[string]Origin
	store   Store
	index   *index.Index
	fills   *fill.Group
	flight  singleflight.Group
	flights flights         // detached upstream calls in progress (revalidate.go)
	life    context.Context // ends with Close; detached calls end with it
	cancel  context.CancelFunc

	// Hot metadata: a hit on these costs no disk read.
	manifests  *lru.Cache[digest.Digest, *Manifest]
	tags       *lru.Cache[string, index.TagRecord]
	acceptKeys *lru.Cache[string, string]
	links      *lru.Cache[string, struct{}] // repo+digest pairs known linked
	vouches    fillVouches                  // repositories answered for running fills (fillvouch.go)
	rec        *shared                      // Options.Records; nil alone
	access     *accessLog

	size, count atomic.Int64
	storeDownAt atomic.Int64 // when the store last did not answer (UnixNano; 0: never)

	// contentMu orders recording content against removing it (eviction,
	// deletes); it is held across index writes and file deletes.
	contentMu sync.Mutex
	// inUseMu guards inUse, the blobs clients are reading, which eviction
	// skips. A lock of its own, held for a map update only, so that a hit
	// never waits behind an index write or a file delete under contentMu.
	inUseMu  sync.Mutex
	inUse    map[digest.Digest]int
	evictRun sync.Mutex // one eviction at a time
	// reportMu orders the access report's writes (sharedaccess.go): one
	// computed later lands later, never under an older one.
	reportMu sync.Mutex
	evictCh  chan struct{}
	pressure atomic.Int64 // a lower eviction target after a full disk
	stop     chan struct{}
	bg       sync.WaitGroup

	// othersHeld is what the other replicas' live access reports hold
	// open, as the leader of eviction last merged them (sharedaccess.go).
	othersHeld atomic.Pointer[map[digest.Digest]bool]
	// evictBatch are the evicting records the leader's batch holds
	// (sharedbatch.go); guarded by evictRun.
	evictBatch map[digest.Digest]evictTaken
	// evictingFor is evictingBound (sharedevicting.go).
	evictingFor time.Duration

	// Test hooks of the handshake between eviction and pushes
	// (sharedevicting.go); nil outside tests.
	evictStep    func(step string, d digest.Digest) // the leader "took" d's evicting record; "checked" d's links, about to delete; is "deleting" it from the store
	evictingSeen func(digest.Digest)                // a push found d's evicting record and waits
}

// Open opens the store in opts.Dir: it sweeps the temp area, opens the
// index and starts accepting requests.
func Open(opts Options) (*Cache, error) {
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = 2 * time.Minute
	}
	if opts.RevalidateTimeout <= 0 {
		opts.RevalidateTimeout = 3 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HighWatermark == 0 {
		opts.HighWatermark = 0.95
	}
	if opts.LowWatermark == 0 {
		opts.LowWatermark = 0.85
	}
	if opts.RecordsReadTimeout <= 0 {
		opts.RecordsReadTimeout = 2 * time.Second
	}
	if opts.PushedReposEvery <= 0 {
		opts.PushedReposEvery = pushedReposEvery
	}
	if opts.AccessFlush == 0 {
		opts.AccessFlush = 10 * time.Second
	}
	if opts.AccessReport <= 0 {
		opts.AccessReport = 10 * time.Second
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	c := &Cache{
		opts: opts, log: opts.Logger, origins: map[string]Origin{},
		access: newAccessLog(time.Second), inUse: map[digest.Digest]int{},
		evictCh: make(chan struct{}, 1), stop: make(chan struct{}),
		flights: flights{running: map[string]time.Time{}}, evictingFor: evictingBound,
	}
	if opts.Records != nil {
		c.rec = &shared{store: opts.Records, queue: make(chan sharedJob, sharedQueue), pending: map[digest.Digest][]Repo{}}
		c.rec.repos.set = map[Repo]struct{}{}
	}
	for _, o := range opts.Origins {
		if opts.Offline {
			o = offlineOrigin{c: c, name: o.Name()}
		}
		c.origins[o.Name()] = o
	}
	if opts.Offline {
		c.opts.TagTTL = math.MaxInt64 // nothing to revalidate against
	}
	// The index first: Badger's directory lock is what keeps a second
	// process (a wharf verify next to a running serve) out, and it must
	// be held before the disk store sweeps tmp/, where the running one's
	// fills are staged.
	var err error
	if c.index, err = index.Open(filepath.Join(opts.Dir, "index"), opts.Logger); err != nil {
		return nil, err
	}
	c.store = opts.Store
	if c.store == nil {
		d, swept, err := disk.Open(opts.Dir)
		if err != nil {
			c.index.Close()
			return nil, err
		}
		if swept > 0 {
			c.log.WithField("files", swept).Info("swept unfinished fills from an earlier run")
		}
		c.store = d
	}
	// The LRUs first: a rebuild keeps the manifests it reads hot.
	c.manifests, _ = lru.New[digest.Digest, *Manifest](2048)
	c.tags, _ = lru.New[string, index.TagRecord](16384)
	c.acceptKeys, _ = lru.New[string, string](256)
	c.links, _ = lru.New[string, struct{}](65536)
	if rb, err := c.rebuild(context.Background()); err != nil {
		c.log.WithError(err).Warn("the index is partly rebuilt; what it lacks is read from the shared records on use")
	} else if rb != (Rebuilt{}) {
		c.log.WithFields(logrus.Fields{"links": rb.Links, "content": rb.Blobs, "pushedTags": rb.PushedTags, "mirroredTags": rb.MirroredTags,
			"referrers": rb.Referrers, "repositories": rb.Repositories}).
			Info("rebuilt the empty index from the shared records")
	}
	rec, err := c.reconcile()
	if err != nil {
		c.index.Close()
		return nil, err
	}
	if rec != (Reconciled{}) {
		c.log.WithFields(logrus.Fields{"dropped": rec.Dropped, "adopted": rec.Adopted, "removed": rec.Removed}).
			Info("reconciled the index with the files on disk")
	}
	size, count, err := c.index.Usage()
	if err != nil {
		c.index.Close()
		return nil, err
	}
	c.size.Store(size)
	c.count.Store(count)
	opts.Metrics.SetCacheUsage(size, count)

	ctx, cancel := context.WithCancel(context.Background())
	c.life, c.cancel = ctx, cancel
	c.fills, err = fill.NewGroup(ctx, fill.Options{
		Sink: c.store,
		Committed: func(d digest.Digest, size int64) error {
			if err := c.recordContent(d, size, "", nil, false); err != nil {
				return err
			}
			return c.fillCommitted(d)
		},
		Ended:            func(d digest.Digest) { c.vouches.take(d) },
		Resumes:          opts.Resumes,
		StallTimeout:     opts.StallTimeout,
		SegmentThreshold: opts.SegmentThreshold,
		Segments:         opts.Segments,
		// A blob larger than the whole cache is streamed, not kept: keeping
		// it would evict everything else and then itself.
		Keep:    func(size int64) bool { return opts.MaxSize <= 0 || size <= opts.MaxSize },
		NoSpace: func() { c.noSpace() },
		Metrics: opts.Metrics,
		Logger:  opts.Logger,
	})
	if err != nil {
		cancel()
		c.index.Close()
		return nil, err
	}
	opts.Metrics.SetCapacity(opts.MaxSize)
	c.bg.Add(1)
	go c.background(c.stop)
	if c.rec != nil {
		c.listPushedReposFirst()
		c.bg.Add(2)
		go c.writeShared(c.stop)
		go c.watchPushedRepos(c.stop)
	}
	if c.reportsAccess() {
		// A first report before serving: a leader that took records
		// after it waits for this replica's next (sharedbatch.go).
		ctx, cancel := context.WithTimeout(c.life, 5*time.Second)
		c.writeAccessReport(ctx, true)
		cancel()
		c.bg.Add(1)
		go c.reportAccess(c.stop)
		if g, ok := c.store.(interface {
			GateShared(func(context.Context, digest.Digest) error)
		}); ok {
			g.GateShared(c.sharedReadGate) // sharedbatch.go
		}
	}
	c.maybeEvict()
	return c, nil
}

// Close stops running fills, waits for them and closes the index.
func (c *Cache) Close() error {
	c.cancel()
	c.fills.Wait()
	c.flights.close()
	close(c.stop)
	c.bg.Wait()
	return c.index.Close()
}

// Usage reports the bytes and number of verified items in the store.
func (c *Cache) Usage() (bytes, items int64) { return c.size.Load(), c.count.Load() }

// origin is the Origin a request for repo asks: the configured one, or,
// for a request ctx marks with DirectOrigin, the one behind it. ctx is
// the request's, read here and not in the detached call that may
// follow: a fill outlives its request's context but not its choice.
func (c *Cache) origin(ctx context.Context, repo Repo) (Origin, error) {
	o, ok := c.origins[repo.Upstream]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownUpstream, repo.Upstream)
	}
	if isDirect(ctx) {
		return directOf(o), nil
	}
	return o, nil
}

// recordContent indexes verified content once and keeps the usage totals.
// Recording pinned content that is already known pins it; recording a
// manifest known by size alone (adopted from a shared store's listing,
// unread) makes its record a manifest's, with its references, so that
// gc and eviction keep what it references with it.
func (c *Cache) recordContent(d digest.Digest, size int64, mediaType string, refs []digest.Digest, pinned bool) error {
	return c.recordContentBy(c.index.PutBlob, d, size, mediaType, refs, pinned)
}

// recordContentBy is recordContent writing the record with put, under
// contentMu: a record written after it is released would let another
// recordContent count the same content again.
func (c *Cache) recordContentBy(put func(digest.Digest, index.BlobMeta) error, d digest.Digest, size int64, mediaType string, refs []digest.Digest, pinned bool) error {
	c.access.touch(d, c.opts.Now())
	defer c.maybeEvict()
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	old, err := c.index.Blob(d)
	known := err == nil
	meta := index.BlobMeta{Size: size, MediaType: mediaType, Added: c.opts.Now(), Refs: refs, Pinned: pinned}
	if known {
		pin := pinned && !old.Pinned
		manifest := mediaType != "" && old.MediaType == ""
		if !pin && !manifest {
			return nil
		}
		meta = old
		meta.Pinned = old.Pinned || pinned
		if manifest {
			meta.MediaType, meta.Refs = mediaType, refs
		}
	}
	if err := put(d, meta); err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	if !known {
		c.opts.Metrics.SetCacheUsage(c.size.Add(size), c.count.Add(1))
		c.recorded(d)
	}
	return nil
}

// unreachable reports whether err means the upstream could not answer, as
// opposed to answering no: then cached content is served stale.
func unreachable(err error) bool {
	return errors.Is(err, upstream.ErrUnavailable) ||
		errors.Is(err, ErrOffline) ||
		errors.Is(err, upstream.ErrTimeout) ||
		errors.Is(err, upstream.ErrTooManyRequests) ||
		errors.Is(err, context.DeadlineExceeded)
}

// detached runs fn once per key under a context that outlives the calling
// client (bounded by FetchTimeout), and lets the caller stop waiting when
// its own context ends without cancelling the others.
func detached[T any](ctx context.Context, c *Cache, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := c.startFlight(ctx, key, func(ctx context.Context) (any, error) { return fn(ctx) })
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// logCtx attaches ctx to a log entry, so hooks can add what the request
// carries (cmd/wharf adds the request id).
func logCtx(l logrus.FieldLogger, ctx context.Context) logrus.FieldLogger {
	switch l := l.(type) {
	case *logrus.Entry:
		return l.WithContext(ctx)
	case *logrus.Logger:
		return l.WithContext(ctx)
	}
	return l
}
