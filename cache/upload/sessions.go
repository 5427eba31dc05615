package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/metrics"
)

// Records keeps the sessions' records; *index.Index is one. A record is
// what counts of a session: bytes in its file past rec.Size were never
// acknowledged.
type Records interface {
	PutUpload(id string, r index.UploadRecord) error
	Upload(id string) (index.UploadRecord, error) // index.ErrNotFound when unknown
	DeleteUpload(id string) error
	Uploads(fn func(id string, r index.UploadRecord) error) error
}

// Ingester takes verified content into the store: the cache's Ingest, the
// one door that import goes through too. f holds exactly size bytes that
// hash to d; on success f's path is gone (Store.Put moved it).
type Ingester interface {
	Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error
}

// Options configure Sessions.
type Options struct {
	Dir     string // where the sessions' files live (data/uploads)
	Records Records
	Ingest  Ingester
	// Expiry is how long a session may go without a chunk before it is
	// swept. Default 1h.
	Expiry time.Duration
	Limits Limits
	// Shared, when set, keeps the sessions in the store the replicas
	// share (shared.go), so that any replica takes a session's next
	// request. Zero: sessions are this node's, in Dir and Records.
	Shared  Shared
	Metrics *metrics.Metrics
	Logger  logrus.FieldLogger
	Now     func() time.Time // clock; default time.Now
}

// Status is what a client is told about a session.
type Status struct {
	ID   string
	Size int64 // bytes received
}

// Chunk describes a request body appended to a session.
type Chunk struct {
	Body io.Reader
	// Length is the body's announced length (Content-Length), -1 unknown.
	Length int64
	// Start is where the client says the chunk goes (Content-Range), -1
	// when it did not say: then the chunk is appended.
	Start int64
	// End is the chunk's last byte by Content-Range, -1 when not given.
	End int64
}

// copyBuffer is the size of reads from a request body: large enough that
// writing a layer costs few syscalls, small enough to stay constant memory.
const copyBuffer = 256 << 10

// Sessions are the upload sessions of one store. Repositories are named
// by their full string ("docker.io/library/alpine"); a session answers
// only in the repository it was opened in.
type Sessions struct {
	opts  Options
	log   logrus.FieldLogger
	slots *slots // open sessions, in all and per client

	mu    sync.Mutex
	locks map[string]*sessionLock // one request at a time per session
	mine  map[string]*localCopy   // shared sessions this replica opened or wrote (shared.go)
	tick  ticker                  // paces the keep-alive of streaming requests (sharedkeep.go)
	// touched, set only by tests, hears whether each ticked keep-alive
	// write went on or lost, so a test can wait on it.
	touched func(ok bool)
	bufs    *partBuffers // for shared chunks of unknown length; nil: the store buffers (buffers.go)

	life      context.Context // ends with Close: the sweep's requests to a shared store
	cancel    context.CancelFunc
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// Open prepares opts.Dir, reconciles it with the records a restart left
// (recover.go) and starts the expiry sweep. Close stops it.
func Open(opts Options) (*Sessions, error) {
	if opts.Expiry <= 0 {
		opts.Expiry = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	s := &Sessions{
		opts: opts, log: opts.Logger, slots: newSlots(opts.Limits),
		locks: map[string]*sessionLock{}, mine: map[string]*localCopy{}, tick: realTicker, stop: make(chan struct{}),
	}
	if ps, ok := opts.Shared.Chunks.(partStreamer); ok && s.shared() {
		limit := opts.Limits.ChunkBuffers
		if limit <= 0 {
			limit = DefaultChunkBuffers
		}
		s.bufs = newPartBuffers(ps.PartSize(), limit)
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		s.cancel()
		return nil, fmt.Errorf("uploads: create %s: %w", opts.Dir, err)
	}
	recover := s.recover
	if s.shared() {
		recover = s.recoverShared
	}
	if err := recover(); err != nil {
		s.cancel()
		return nil, err
	}
	s.done.Add(1)
	go s.sweepLoop()
	return s, nil
}

// Close stops the sweep and waits for it. Sessions stay on disk for the
// next Open.
func (s *Sessions) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.cancel()
		s.done.Wait()
	})
	return nil
}

func (s *Sessions) path(id string) string { return filepath.Join(s.opts.Dir, id) }

// sessionLock is a session's mutex and how many requests hold or await
// it, so that the last one out removes it.
type sessionLock struct {
	sync.Mutex
	n int
}

// lock serialises requests on one session. The entry lives only while
// requests use it: an id a client makes up (unknown, or ended under a
// waiting request) must not leave a mutex behind for every guess.
func (s *Sessions) lock(id string) func() {
	s.mu.Lock()
	l, ok := s.locks[id]
	if !ok {
		l = &sessionLock{}
		s.locks[id] = l
	}
	l.n++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.leave(id, l)
	}
}

// tryLock is lock for the sweep, which does not wait: ok is false while a
// request holds or awaits id (the session is in use, so not idle).
func (s *Sessions) tryLock(id string) (unlock func(), ok bool) {
	s.mu.Lock()
	if _, held := s.locks[id]; held {
		s.mu.Unlock()
		return nil, false
	}
	l := &sessionLock{n: 1}
	l.Lock()
	s.locks[id] = l
	s.mu.Unlock()
	return func() {
		l.Unlock()
		s.leave(id, l)
	}, true
}

// leave drops one holder of id's lock, and the entry with the last.
func (s *Sessions) leave(id string, l *sessionLock) {
	s.mu.Lock()
	if l.n--; l.n == 0 {
		delete(s.locks, id)
	}
	s.mu.Unlock()
}

// Start opens a session in repo for client, an opaque name of who asks (a
// user, or an anonymous client's address): it counts against
// Options.Limits until the session ends, and past them the answer is
// ErrTooMany.
func (s *Sessions) Start(ctx context.Context, repo, client string) (Status, error) {
	if s.shared() {
		return s.startShared(ctx, repo, client)
	}
	if limit, err := s.slots.take(client); err != nil {
		s.opts.Metrics.LimitHit("uploads_" + limit)
		return Status{}, err
	}
	id := uuid.NewString()
	f, err := os.OpenFile(s.path(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		s.slots.give(client)
		s.opts.Metrics.StoreError("write")
		return Status{}, fmt.Errorf("start upload: %w", err)
	}
	f.Close()
	now := s.opts.Now()
	if err := s.opts.Records.PutUpload(id, index.UploadRecord{Repo: repo, Client: client, Started: now, Updated: now}); err != nil {
		os.Remove(s.path(id))
		s.slots.give(client)
		s.opts.Metrics.StoreError("index")
		return Status{}, err
	}
	s.opts.Metrics.UploadStarted()
	return Status{ID: id}, nil
}

// session returns the record of id if it belongs to repo.
func (s *Sessions) session(repo, id string) (index.UploadRecord, error) {
	if _, err := uuid.Parse(id); err != nil {
		return index.UploadRecord{}, fmt.Errorf("upload %q: %w", id, ErrUnknown)
	}
	rec, err := s.opts.Records.Upload(id)
	if errors.Is(err, index.ErrNotFound) || (err == nil && rec.Repo != repo) {
		return index.UploadRecord{}, fmt.Errorf("upload %s in %s: %w", id, repo, ErrUnknown)
	}
	return rec, err
}

// Status reports a session's progress.
func (s *Sessions) Status(ctx context.Context, repo, id string) (Status, error) {
	if s.shared() {
		st, _, err := s.load(ctx, repo, id)
		return Status{ID: id, Size: st.Size}, err
	}
	rec, err := s.session(repo, id)
	if err != nil {
		return Status{}, err
	}
	return Status{ID: id, Size: rec.Size}, nil
}

// Write appends a chunk (PATCH).
func (s *Sessions) Write(ctx context.Context, repo, id string, c Chunk) (Status, error) {
	defer s.lock(id)()
	if s.shared() {
		return s.writeShared(ctx, repo, id, c)
	}
	rec, err := s.session(repo, id)
	if err != nil {
		return Status{}, err
	}
	f, _, rec, err := s.appendChunk(id, rec, c)
	if f != nil {
		f.Close()
	}
	return Status{ID: id, Size: rec.Size}, err
}

// Finish appends a last chunk (which may be empty), checks that
// everything received hashes to d and hands the file to the Ingester as
// pinned content. A wrong digest ends the session and keeps nothing; a
// failure to ingest leaves the session to be retried or swept.
func (s *Sessions) Finish(ctx context.Context, repo, id string, c Chunk, d digest.Digest) error {
	if err := d.Validate(); err != nil || !d.Algorithm().Available() {
		return fmt.Errorf("%q: %w", d, ErrDigestInvalid)
	}
	defer s.lock(id)()
	if s.shared() {
		return s.finishShared(ctx, repo, id, c, d)
	}
	rec, err := s.session(repo, id)
	if err != nil {
		return err
	}
	f, h, rec, err := s.appendChunk(id, rec, c)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	defer f.Close()
	got, err := digestOf(f, h, d)
	if err != nil {
		return err
	}
	if got != d {
		s.end(id)
		return fmt.Errorf("upload %s: received bytes hash to %s, not %s: %w", id, got, d, ErrDigestInvalid)
	}
	if err := s.opts.Ingest.Ingest(ctx, f, d, rec.Size, true); err != nil {
		return err
	}
	s.end(id)
	return nil
}

// Cancel ends a session and removes what it received.
func (s *Sessions) Cancel(ctx context.Context, repo, id string) error {
	defer s.lock(id)()
	if s.shared() {
		if _, _, err := s.load(ctx, repo, id); err != nil {
			return err
		}
		return s.endShared(ctx, id)
	}
	if _, err := s.session(repo, id); err != nil {
		return err
	}
	s.end(id)
	return nil
}

// end forgets a session (its file may already be ingested) and frees its
// slot; a session already ended is left alone. The caller holds its lock.
func (s *Sessions) end(id string) {
	os.Remove(s.path(id))
	rec, err := s.opts.Records.Upload(id)
	if errors.Is(err, index.ErrNotFound) {
		return
	}
	if err := s.opts.Records.DeleteUpload(id); err != nil {
		s.log.WithError(err).WithField("upload", id).Warn("forget upload")
	}
	if err == nil { // unreadable, its client is unknown: the slot is back at the next start
		s.slots.give(rec.Client)
	}
	s.opts.Metrics.UploadEnded()
}
