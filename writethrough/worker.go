package writethrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/metrics"
)

// Store is what write-through reads of the cache: the manifests it
// pushes and the content they reference, from the cache alone.
// *cache.Cache implements it.
type Store interface {
	StoredManifest(d digest.Digest) (*cache.Manifest, error)
	// ContentSize is the size of stored content; cache.ErrNotFound when
	// it is not stored, another error when the store does not answer.
	ContentSize(d digest.Digest) (int64, error)
	OpenContent(d digest.Digest) (*cache.Blob, error)
}

// Queue is the durable queue of jobs, oldest first. index.Queue (from
// cache.Cache.Queue) implements it.
type Queue interface {
	PutJob(key string, j index.Job) error
	DeleteJob(key string) error
	// Job returns one job, or an error wrapping index.ErrNotFound.
	Job(key string) (index.Job, error)
	Jobs(fn func(key string, j index.Job) error) error
}

// Options configure write-through.
type Options struct {
	// Sync makes a manifest PUT wait until the upstream has the manifest;
	// a failure is returned to the client and the job stays queued.
	Sync bool
	// Backoff is the wait after a first failure, doubled per failure up
	// to MaxBackoff. Defaults 1s and 5m.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt. Default 30m (a large image over a slow
	// link).
	Timeout time.Duration
	// Parallel is how many repositories the Worker pushes to at once.
	// Default 4.
	Parallel int
	// Origins are the cache's upstreams, found by Name(); those that are
	// Replicators are pushed to, those that are Deleters take deletes.
	Origins []cache.Origin
	// Shared says q is the cluster's (SharedQueue): other replicas queue
	// jobs in it, and one replica at a time runs them. The Worker then runs
	// jobs only while Lead runs, and reads the queue every Poll (default
	// 2s) meanwhile. Requests still queue, and in synchronous mode run
	// their own jobs, on any replica.
	Shared  bool
	Poll    time.Duration
	Metrics *metrics.Metrics // nil: none
	Logger  logrus.FieldLogger
	Now     func() time.Time // the queue's clock; default time.Now
}

// Worker queues jobs and runs them against the upstreams.
type Worker struct {
	store   Store
	q       Queue
	origins map[string]cache.Origin
	opts    Options
	log     logrus.FieldLogger

	ctx    context.Context // the Worker's life: Close cancels it
	cancel context.CancelFunc
	wake   chan struct{}
	done   sync.WaitGroup // the loop and the running lines

	locks   repoLocks           // one attempt at a time per repository
	busyMu  sync.Mutex          // guards busy
	busy    map[string]bool     // repositories whose line a goroutine runs
	pubMu   sync.Mutex          // orders publish's count and set
	mountMu sync.Mutex          // guards mounts
	mounts  map[mountKey]string // per upstream: a repository path there known to hold a blob

	// qmu orders writes of a job by a request (queueing it again) against
	// the writes after an attempt, which must not undo them.
	qmu        sync.Mutex
	last       time.Time  // the latest Enqueued, guarded by qmu
	tombstones tombstones // pending deletes, hidden from reads

	leadMu sync.Mutex
	lead   context.Context // while jobs run: wt.ctx alone, or Lead's; nil while another replica leads
	passes atomic.Int64    // the loop's looks at the queue, for tests to wait on
	lines  sync.WaitGroup  // the running lines (also counted in done)
}

// New reads what a restart left in q and starts the Worker. Close it
// before closing the cache that holds q.
func New(store Store, q Queue, opts Options) (*Worker, error) {
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Minute
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	ctx, cancel := context.WithCancel(context.Background())
	wt := &Worker{
		store: store, q: q, origins: map[string]cache.Origin{}, opts: opts, log: opts.Logger,
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
		busy: map[string]bool{}, mounts: map[mountKey]string{},
	}
	for _, o := range opts.Origins {
		wt.origins[o.Name()] = o
	}
	if !opts.Shared {
		wt.lead = ctx // one replica: it always leads
	}
	if err := wt.load(); err != nil {
		cancel()
		return nil, err
	}
	wt.publish()
	wt.done.Add(1)
	go wt.loop()
	return wt, nil
}

// Close stops the Worker and waits for its goroutines; a push in flight
// is abandoned and stays queued.
func (wt *Worker) Close() error {
	wt.cancel()
	wt.done.Wait()
	return nil
}

// Lead runs the shared queue's jobs on this replica until ctx ends (the
// lease is lost or given up) or the Worker closes; the lines running then
// stop at their next job, and an attempt in flight is cancelled. It is
// the job a lease.Run runs; without Options.Shared it returns at once.
func (wt *Worker) Lead(ctx context.Context) {
	if !wt.opts.Shared {
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(wt.ctx, cancel)
	defer stop()
	wt.leadMu.Lock()
	wt.lead = lctx
	wt.leadMu.Unlock()
	wt.log.Info("write-through: leading the cluster's queue")
	wt.signal()
	<-lctx.Done()
	wt.leadMu.Lock()
	wt.lead = nil
	wt.leadMu.Unlock()
	// The lines started under this lead stop at their next job, and their
	// attempt in flight is cancelled with lctx; wait for them, so that the
	// lease is given up only once no job of this replica runs. A start
	// holds busyMu from its check of the lead to its Add: past this lock,
	// none is between the two.
	wt.busyMu.Lock()
	//lint:ignore SA2001 the lock is taken only to wait out a start between its check and its Add
	wt.busyMu.Unlock() // an empty critical section, on purpose
	wt.lines.Wait()
}

// leading returns the context jobs run under, or nil while another
// replica leads.
func (wt *Worker) leading() context.Context {
	wt.leadMu.Lock()
	defer wt.leadMu.Unlock()
	if wt.lead == nil || wt.lead.Err() != nil {
		return nil
	}
	return wt.lead
}

// load reads the pending deletes a restart left in the queue, and where
// its line ends.
func (wt *Worker) load() error {
	return wt.q.Jobs(func(key string, j index.Job) error {
		if j.Op != "" {
			wt.tombstones.add(key)
		}
		if j.Enqueued.After(wt.last) {
			wt.last = j.Enqueued
		}
		return nil
	})
}

// origin returns repo's upstream.
func (wt *Worker) origin(repo cache.Repo) (cache.Origin, error) {
	o, ok := wt.origins[repo.Upstream]
	if !ok {
		return nil, fmt.Errorf("%w %q", cache.ErrUnknownUpstream, repo.Upstream)
	}
	return o, nil
}

// attempt runs one job of repo: on success it is removed, on failure
// rescheduled. It holds repo's lock, so a request in synchronous mode and
// the Worker never run two jobs of one repository at once.
func (wt *Worker) attempt(ctx context.Context, repo, key string) error {
	defer wt.locks.lock(repo)()
	j, err := wt.q.Job(key)
	if errors.Is(err, index.ErrNotFound) {
		return nil // done by another attempt
	}
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, wt.opts.Timeout)
	defer cancel()
	start := time.Now()
	log := wt.log.WithFields(logrus.Fields{"repo": j.Repo, "tag": j.Tag, "digest": j.Digest, "attempt": j.Attempts + 1})
	if j.Op != "" {
		log = log.WithField("op", j.Op)
	}
	err = wt.replicate(actx, j)
	if err == nil {
		if derr := wt.finish(key, j); derr != nil {
			log.WithError(derr).Warn("write-through done, but the job stays queued")
		}
		if j.Op == "" {
			wt.opts.Metrics.WriteThroughDone()
		} else {
			wt.opts.Metrics.WriteThroughDeleteDone()
		}
		wt.publish()
		log.WithField("duration", time.Since(start).Round(time.Millisecond).String()).Info("written through to the upstream")
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down, or the lead was lost: the job stays as it was,
		// for whichever replica leads now.
		return err
	}
	if dropped(err) {
		// Deleted since it was pushed, or a delete the upstream refuses
		// outright: no retry can change that.
		wt.finish(key, j)
		wt.publish()
		wt.opts.Metrics.WriteThroughFailed(failureReason(err))
		log.WithError(err).Warn("write-through dropped")
		return err
	}
	j.Attempts++
	j.LastError = err.Error()
	j.NextTry = wt.opts.Now().Add(wt.backoff(j.Attempts))
	if perr := wt.reschedule(key, j); perr != nil {
		log.WithError(perr).Error("reschedule write-through")
	}
	wt.publish()
	reason := failureReason(err)
	wt.opts.Metrics.WriteThroughFailed(reason)
	log.WithError(err).WithField("reason", reason).WithField("retry_at", j.NextTry.Format(time.RFC3339)).
		Warn("write-through failed; will retry")
	return err
}

func (wt *Worker) backoff(attempts int) time.Duration {
	d := wt.opts.Backoff
	for i := 1; i < attempts && d < wt.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, wt.opts.MaxBackoff)
}

// publish sets the pending gauge to the queue's length. Lines finish
// concurrently: under pubMu the last to count is the last to set.
func (wt *Worker) publish() {
	wt.pubMu.Lock()
	defer wt.pubMu.Unlock()
	n := 0
	wt.q.Jobs(func(string, index.Job) error { n++; return nil })
	wt.opts.Metrics.SetWriteThroughPending(n)
}
