package prefetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
)

// Defaults for Options' zero values.
const (
	DefaultConcurrency = 8    // fills per upstream: past containerd's 3, well short of hurting a registry
	DefaultQueue       = 1024 // blobs waiting per upstream: a few dozen images' layers
	DefaultRemember    = 4096 // prefetched digests remembered for the used count
	armedSize          = 1024 // manifests a HEAD fetched, waiting for their GET
)

// Store is the cache prefetch fills; *cache.Cache satisfies it.
type Store interface {
	// Prefetch starts the fill of d under repo, as a client's miss would,
	// unless d is stored or being filled: then it returns nil and asks
	// nothing of anyone.
	Prefetch(ctx context.Context, repo cache.Repo, d digest.Digest) (cache.Prefetched, error)
	// HasContent reports whether d is stored.
	HasContent(d digest.Digest) (int64, bool)
	// Full reports whether the cache is past its high watermark: a blob
	// prefetched now could evict one a client used.
	Full() bool
	// Keeps reports whether a blob of this size would be kept at all.
	Keeps(size int64) bool
}

// Upstream is what prefetch asks of an upstream before it asks the
// upstream for anything; *upstream.Client satisfies it.
type Upstream interface {
	Name() string      // cache.Repo.Upstream of its repositories
	Down() error       // non-nil while it is marked down
	RateLimited() bool // it is limiting wharf now (a recent 429, an empty budget)
	// Near reports that the registry answers so fast that one connection
	// per blob, as clients ask, fills the link: prefetching there only
	// splits the link among blobs nobody waits for yet.
	Near() bool
}

// Options configure a Prefetcher.
type Options struct {
	Store Store
	// Upstreams get a lane each. An image of a repository under any other
	// upstream is not prefetched.
	Upstreams []Upstream
	// Concurrency is how many blobs are fetched at once per upstream.
	// Default 8.
	Concurrency int
	// Queue is how many blobs may wait per upstream; past it, more are
	// dropped (and counted). Default 1024.
	Queue int
	// Remember is how many prefetched digests are kept to count the first
	// client read of each (wharf_prefetch_used_total); the oldest are
	// forgotten. Default 4096.
	Remember int
	Metrics  *metrics.Metrics
	Logger   logrus.FieldLogger // nil discards
}

// Prefetcher fetches the blobs of the images clients pull. Its methods are
// safe for concurrent use; Close stops it. A nil *Prefetcher is prefetch
// switched off: its methods do nothing.
type Prefetcher struct {
	opts    Options
	log     logrus.FieldLogger
	lanes   map[string]*lane // by upstream name
	fetched *lru.Cache[digest.Digest, int64]
	armed   *lru.Cache[string, struct{}] // armKey of manifests a HEAD fetched
	nArmed  atomic.Int64                 // entries in armed: a GET of a hit looks no further when 0

	ctx    context.Context // ends with Close: the workers' stop path
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts the workers of every upstream's lane under ctx (the
// owner's, never a request's); Close stops them.
func New(ctx context.Context, opts Options) (*Prefetcher, error) {
	if opts.Store == nil {
		return nil, errors.New("prefetch: no store")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Remember <= 0 {
		opts.Remember = DefaultRemember
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	fetched, err := lru.New[digest.Digest, int64](opts.Remember)
	if err != nil {
		return nil, fmt.Errorf("prefetch: %w", err)
	}
	var p *Prefetcher
	armed, err := lru.NewWithEvict[string, struct{}](armedSize, func(string, struct{}) { p.nArmed.Add(-1) })
	if err != nil {
		return nil, fmt.Errorf("prefetch: %w", err)
	}
	p = &Prefetcher{opts: opts, log: log, lanes: map[string]*lane{}, fetched: fetched, armed: armed}
	for _, u := range opts.Upstreams {
		if _, dup := p.lanes[u.Name()]; dup {
			return nil, fmt.Errorf("prefetch: upstream %q given twice", u.Name())
		}
		p.lanes[u.Name()] = &lane{up: u, queue: make(chan job, opts.Queue), pending: map[digest.Digest]struct{}{}}
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	for _, l := range p.lanes {
		for range opts.Concurrency {
			p.wg.Add(1)
			go p.work(l)
		}
	}
	return p, nil
}

// Arm remembers m, a manifest of repo a client's HEAD just made the
// cache fetch, for the next GET of it (Image). A HEAD alone prefetches
// nothing: digest pollers (crane digest, Renovate, Flux) never pull, and
// containerd, which HEADs a tag and then GETs its digest, still gets its
// prefetch from the GET.
func (p *Prefetcher) Arm(repo cache.Repo, m *cache.Manifest) {
	if p == nil || m == nil || !m.Fetched || oci.IsIndex(m.Descriptor.MediaType) {
		return
	}
	if found, _ := p.armed.ContainsOrAdd(armKey(repo, m.Descriptor.Digest), struct{}{}); !found {
		p.nArmed.Add(1)
	}
}

func armKey(repo cache.Repo, d digest.Digest) string { return repo.String() + "@" + d.String() }

// Image queues the blobs of m, a manifest of repo just served to a
// client's GET, if the cache fetched it (m.Fetched) or a HEAD armed it,
// and it is an image: an index names no blob of its own, and which of
// its children the client takes is known only when the client asks for
// one; an artifact (a signature, an SBOM) is not pulled to be run. Each
// digest is queued once while it is queued or being fetched (N clients
// sharing one manifest fetch all see Fetched). It never waits: a blob that
// finds its lane's queue full is dropped. An upstream marked down or
// rate-limiting gets nothing queued.
func (p *Prefetcher) Image(repo cache.Repo, m *cache.Manifest) {
	if p == nil || m == nil || p.ctx.Err() != nil {
		return
	}
	if !m.Fetched && p.nArmed.Load() == 0 {
		return // a hit, and no HEAD armed anything: the common case, lock-free
	}
	if armed := p.armed.Remove(armKey(repo, m.Descriptor.Digest)); !m.Fetched && !armed {
		return
	}
	l := p.lanes[repo.Upstream]
	if l == nil || oci.IsIndex(m.Descriptor.MediaType) {
		return
	}
	parsed, err := oci.ParseManifest(m.Body)
	if err != nil || !isImage(m.Descriptor.MediaType, parsed) {
		return // the cache checked it
	}
	stop := p.stopped(l)
	seen := make(map[digest.Digest]bool, len(parsed.Blobs))
	for _, b := range parsed.Blobs {
		if oci.Foreign(b) || seen[b.Digest] { // schema 1 repeats layers
			continue
		}
		seen[b.Digest] = true
		result := stop
		if result == "" {
			result = l.put(job{repo: repo, d: b.Digest, size: b.Size}, p.opts.Metrics)
		}
		if result != "" {
			p.opts.Metrics.Prefetched(result, b.Size)
		}
	}
}

// isImage reports whether a manifest names a runnable image: not an
// index (even one without its media type), not a referrer (a subject:
// signatures, SBOMs, attestations), and with an image's config, or none
// for schema 1.
func isImage(mediaType string, p oci.Parsed) bool {
	switch {
	case len(p.Manifests) > 0, p.Subject != nil:
		return false
	case p.Config != nil:
		return oci.IsImageConfig(p.Config.MediaType)
	}
	return mediaType == oci.DockerSchema1 || mediaType == oci.DockerSchema1Signed
}

// Used notes a client's read of blob d: the first read of a blob
// prefetch fetched counts it as used.
func (p *Prefetcher) Used(d digest.Digest) {
	if p == nil {
		return
	}
	size, ok := p.fetched.Peek(d)
	if ok && p.fetched.Remove(d) { // of two first reads at once, one counts
		p.opts.Metrics.PrefetchUsedBlob(size)
	}
}

// Close stops the workers and waits for them. Fills they started go on
// under the cache, which owns them; blobs still queued are forgotten, and
// an Image call from here on queues nothing.
func (p *Prefetcher) Close() error {
	if p == nil {
		return nil
	}
	p.cancel()
	p.wg.Wait()
	for _, l := range p.lanes {
		l.close(p.opts.Metrics)
	}
	return nil
}
