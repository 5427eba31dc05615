package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// Write-through passes pushed manifests on to the upstream: first every
// blob they reference (skipping what the upstream has, mounting what it
// holds in another repository), then child manifests, then the manifest
// under its tag. Deletes follow the same way (writethroughdelete.go).
// Pending jobs are in the index (q/ keys), so a restart loses none; a
// failed attempt is retried with exponential backoff, and every attempt
// is counted in metrics and logged.
//
// Each repository's jobs run in the order they were queued, one after the
// other: a job waits while an earlier one of its repository is failing,
// so a delete never overtakes the push it undoes, nor a push the delete
// before it.

// Replicator is what write-through needs of an upstream beyond reading.
// upstream.Client implements it.
type Replicator interface {
	HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// PushBlob uploads size bytes from open() as d to repo, or mounts d
	// from mountFrom when that is not empty and the upstream allows it.
	PushBlob(ctx context.Context, repo string, d digest.Digest, size int64, open func() (io.ReadCloser, error), mountFrom string) error
	PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error
}

// WriteThroughOptions configure write-through.
type WriteThroughOptions struct {
	// Sync makes a manifest PUT wait until the upstream has the manifest;
	// a failure is returned to the client and the job stays queued.
	Sync bool
	// Backoff is the wait after a first failure, doubled per failure up
	// to MaxBackoff. Defaults 1s and 5m.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt. Default 30m (a large image over a slow
	// link).
	Timeout time.Duration
}

type writeThrough struct {
	w      *Writer
	opts   WriteThroughOptions
	log    logrus.FieldLogger
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	done   sync.WaitGroup

	mu     sync.Mutex               // one attempt at a time: jobs share blobs
	mounts map[digest.Digest]string // upstream repositories known to hold a blob

	// qmu orders writes of a job by a request (queueing it again) against
	// the worker's writes after an attempt, which must not undo them.
	qmu        sync.Mutex
	last       time.Time  // the latest Enqueued, guarded by qmu
	tombstones tombstones // pending deletes, hidden from reads
}

func newWriteThrough(w *Writer, opts WriteThroughOptions) (*writeThrough, error) {
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	wt := &writeThrough{
		w: w, opts: opts, log: w.log.WithField("component", "writethrough"),
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), mounts: map[digest.Digest]string{},
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

func (wt *writeThrough) close() {
	wt.cancel()
	wt.done.Wait()
}

// enqueue records a job per tag (one by digest without tags). In
// synchronous mode it runs them before returning.
func (wt *writeThrough) enqueue(ctx context.Context, repo Repo, tags []string, d digest.Digest) error {
	if !wt.replicates(repo) {
		return nil // a pull-only upstream (write-through is per upstream): the push stays here
	}
	if len(tags) == 0 {
		tags = []string{""}
	}
	var keys []string
	var jobs []index.Job
	for _, t := range tags {
		if t != "" {
			wt.dropSuperseded(repo.String(), t, d)
		}
		keys = append(keys, index.JobKey(repo.String(), t, d))
		jobs = append(jobs, index.Job{Repo: repo.String(), Tag: t, Digest: d})
	}
	if err := wt.queue(repo, keys, jobs); err != nil {
		return err
	}
	return wt.settle(ctx, repo, keys)
}

// replicates reports whether repo's upstream takes pushes.
func (wt *writeThrough) replicates(repo Repo) bool {
	o, err := wt.w.origin(repo)
	if err != nil {
		return true // unknown now; an attempt will say so
	}
	_, ok := o.(Replicator)
	return ok
}

// queue writes jobs at the back of their repository's line (a job queued
// again moves there too: it must follow what was queued in between) and
// wakes the worker, outside synchronous mode.
func (wt *writeThrough) queue(repo Repo, keys []string, jobs []index.Job) error {
	wt.qmu.Lock()
	// Enqueued orders the line: it only grows, whatever the clock does.
	now := wt.w.opts.Now()
	if !now.After(wt.last) {
		now = wt.last.Add(time.Nanosecond)
	}
	wt.last = now
	for i, key := range keys {
		j := jobs[i]
		if old, err := wt.w.index.Job(key); err == nil {
			j.Attempts, j.LastError = old.Attempts, old.LastError
		}
		j.Enqueued, j.NextTry = now, now
		if wt.opts.Sync {
			j.NextTry = now.Add(wt.opts.Timeout) // the request runs it; the worker stays off
		}
		if err := wt.w.index.PutJob(key, j); err != nil {
			wt.qmu.Unlock()
			return fmt.Errorf("write-through: queue %s: %w", repo, err)
		}
		if j.Op != "" {
			wt.tombstones.add(key)
		}
	}
	wt.qmu.Unlock()
	wt.publish()
	if !wt.opts.Sync {
		select {
		case wt.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// settle, in synchronous mode, runs repo's line up to keys and returns
// its failure; otherwise the worker does that.
func (wt *writeThrough) settle(ctx context.Context, repo Repo, keys []string) error {
	if !wt.opts.Sync || len(keys) == 0 {
		return nil
	}
	if err := wt.runLine(ctx, repo.String(), keys); err != nil {
		return fmt.Errorf("write-through: %w", err)
	}
	return nil
}

// runLine attempts repo's jobs in order until every one of keys is done,
// and stops at the first failure.
func (wt *writeThrough) runLine(ctx context.Context, repo string, keys []string) error {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var line []string
	err := wt.w.index.Jobs(func(key string, j index.Job) error {
		if j.Repo == repo {
			line = append(line, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range line {
		if len(want) == 0 {
			return nil
		}
		err := wt.attempt(ctx, key)
		if err != nil && (want[key] || !dropped(err)) {
			return err
		}
		delete(want, key)
	}
	return nil
}

// dropSuperseded removes queued jobs that would set repo:tag to another
// digest: the newer push wins, and an older one retried after it would
// move the upstream's tag back.
func (wt *writeThrough) dropSuperseded(repo, tag string, d digest.Digest) {
	wt.w.index.Jobs(func(key string, j index.Job) error {
		if j.Op == "" && j.Repo == repo && j.Tag == tag && j.Digest != d {
			wt.w.index.DeleteJob(key)
			wt.log.WithFields(logrus.Fields{"repo": repo, "tag": tag, "digest": j.Digest}).
				Info("queued write-through superseded by a newer push of the tag")
		}
		return nil
	})
}

// loop runs due jobs until close. The first pass after a start runs every
// job at once, whatever its backoff said: the restart may be the fix.
func (wt *writeThrough) loop() {
	defer wt.done.Done()
	next := wt.runDue(true)
	for {
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(wt.w.opts.Now()), 10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-wt.ctx.Done():
			t.Stop()
			return
		case <-wt.wake:
		case <-t.C:
		}
		t.Stop()
		next = wt.runDue(false)
	}
}

// runDue attempts every due job, in each repository's order, and returns
// when the next one is due (zero: none waiting). A job behind one of its
// repository that is not due, or failed now, waits for it.
func (wt *writeThrough) runDue(all bool) time.Time {
	var due, repos []string
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	blocked := map[string]bool{}
	now := wt.w.opts.Now()
	err := wt.w.index.Jobs(func(key string, j index.Job) error {
		switch {
		case blocked[j.Repo]:
		case all || !j.NextTry.After(now):
			due, repos = append(due, key), append(repos, j.Repo)
		default:
			blocked[j.Repo] = true
			later(j.NextTry)
		}
		return nil
	})
	if err != nil {
		wt.log.WithError(err).Error("read write-through queue")
		return now.Add(wt.opts.Backoff)
	}
	for i, key := range due {
		if wt.ctx.Err() != nil {
			return time.Time{}
		}
		if blocked[repos[i]] {
			continue
		}
		if err := wt.attempt(wt.ctx, key); err != nil && !dropped(err) {
			blocked[repos[i]] = true
			if j, jerr := wt.w.index.Job(key); jerr == nil {
				later(j.NextTry)
			}
		}
	}
	return next
}

// attempt runs one job: on success it is removed, on failure rescheduled.
func (wt *writeThrough) attempt(ctx context.Context, key string) error {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	j, err := wt.w.index.Job(key)
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
			wt.w.opts.Metrics.WriteThroughDone()
		} else {
			wt.w.opts.Metrics.WriteThroughDeleteDone()
		}
		wt.publish()
		log.WithField("duration", time.Since(start).Round(time.Millisecond).String()).Info("written through to the upstream")
		return nil
	}
	if wt.ctx.Err() != nil {
		return err // shutting down: the job stays as it was
	}
	if dropped(err) {
		// Deleted since it was pushed, or a delete the upstream refuses
		// outright: no retry can change that.
		wt.finish(key, j)
		wt.publish()
		wt.w.opts.Metrics.WriteThroughFailed(failureReason(err))
		log.WithError(err).Warn("write-through dropped")
		return err
	}
	j.Attempts++
	j.LastError = err.Error()
	j.NextTry = wt.w.opts.Now().Add(wt.backoff(j.Attempts))
	if perr := wt.reschedule(key, j); perr != nil {
		log.WithError(perr).Error("reschedule write-through")
	}
	wt.publish()
	reason := failureReason(err)
	wt.w.opts.Metrics.WriteThroughFailed(reason)
	log.WithError(err).WithField("reason", reason).WithField("retry_at", j.NextTry.Format(time.RFC3339)).
		Warn("write-through failed; will retry")
	return err
}

// finish removes an attempted job, unless a request queued it again
// meanwhile: then the new one stands, at its new place.
func (wt *writeThrough) finish(key string, j index.Job) error {
	wt.qmu.Lock()
	defer wt.qmu.Unlock()
	if cur, err := wt.w.index.Job(key); err != nil || !cur.Enqueued.Equal(j.Enqueued) {
		return nil
	}
	if j.Op != "" {
		wt.tombstones.remove(key)
	}
	return wt.w.index.DeleteJob(key)
}

// reschedule writes a failed job back, unless a request queued it again
// meanwhile.
func (wt *writeThrough) reschedule(key string, j index.Job) error {
	wt.qmu.Lock()
	defer wt.qmu.Unlock()
	if cur, err := wt.w.index.Job(key); err != nil || !cur.Enqueued.Equal(j.Enqueued) {
		return nil
	}
	return wt.w.index.PutJob(key, j)
}

func (wt *writeThrough) backoff(attempts int) time.Duration {
	d := wt.opts.Backoff
	for i := 1; i < attempts && d < wt.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, wt.opts.MaxBackoff)
}

// publish sets the pending gauge to the queue's length.
func (wt *writeThrough) publish() {
	n := 0
	wt.w.index.Jobs(func(string, index.Job) error { n++; return nil })
	wt.w.opts.Metrics.SetWriteThroughPending(n)
}

// replicate pushes j's manifest and everything it references, or passes
// its delete on.
func (wt *writeThrough) replicate(ctx context.Context, j index.Job) error {
	up, path, ok := strings.Cut(j.Repo, "/")
	if !ok {
		return fmt.Errorf("repository %q: %w", j.Repo, ErrUnknownUpstream)
	}
	o, err := wt.w.origin(Repo{Upstream: up, Path: path})
	if err != nil {
		return err
	}
	if j.Op != "" {
		return wt.replicateDelete(ctx, o, path, j)
	}
	rep, ok := o.(Replicator)
	if !ok {
		return fmt.Errorf("upstream %s cannot be pushed to: %w", up, ErrUnknownUpstream)
	}
	ref := j.Tag
	if ref == "" {
		ref = j.Digest.String()
	}
	return wt.pushManifest(ctx, rep, path, j.Digest, ref, 0)
}

// maxDepth bounds nested indexes, which a hostile push could make deep.
const maxDepth = 8

func (wt *writeThrough) pushManifest(ctx context.Context, rep Replicator, path string, d digest.Digest, ref string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("manifest %s: indexes nested too deep: %w", d, ErrManifestInvalid)
	}
	m, err := wt.w.storedManifest(d)
	if err != nil {
		return fmt.Errorf("manifest %s is no longer stored: %w", d, errMissing)
	}
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		return err
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		if err := wt.pushBlob(ctx, rep, path, b.Digest); err != nil {
			return err
		}
	}
	for _, c := range p.Manifests {
		if err := wt.pushManifest(ctx, rep, path, c.Digest, c.Digest.String(), depth+1); err != nil {
			return err
		}
	}
	return rep.PutManifest(ctx, path, ref, m.Descriptor.MediaType, m.Body)
}

var errMissing = errors.New("content missing")

func (wt *writeThrough) pushBlob(ctx context.Context, rep Replicator, path string, d digest.Digest) error {
	if _, err := rep.HeadBlob(ctx, path, d); err == nil {
		return nil
	}
	size, err := wt.w.store.Stat(ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s is no longer stored: %w", d, errMissing)
	}
	open := func() (io.ReadCloser, error) { return wt.w.store.Open(ctx, d) }
	from := wt.mounts[d]
	if from == path {
		from = ""
	}
	if err := rep.PushBlob(ctx, path, d, size, open, from); err != nil {
		return err
	}
	wt.mounts[d] = path
	return nil
}

// failureReason labels an error for the failures metric (a fixed set).
func failureReason(err error) string {
	switch {
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, upstream.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, upstream.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, upstream.ErrDenied):
		return "denied"
	case errors.Is(err, upstream.ErrTooManyRequests):
		return "429"
	case errors.Is(err, upstream.ErrRejected), errors.Is(err, upstream.ErrNotFound):
		return "rejected"
	case errors.Is(err, errMissing):
		return "missing"
	}
	return "error"
}
