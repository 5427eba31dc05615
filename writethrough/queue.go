package writethrough

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
)

// Replicates reports whether repo's upstream takes pushes.
func (wt *Worker) Replicates(repo cache.Repo) bool {
	o, err := wt.origin(repo)
	if err != nil {
		return true // unknown now; an attempt will say so
	}
	_, ok := o.(Replicator)
	return ok
}

// Push records a job per tag (one by digest without tags). In
// synchronous mode it runs them before returning.
func (wt *Worker) Push(ctx context.Context, repo cache.Repo, tags []string, d digest.Digest) error {
	if !wt.Replicates(repo) {
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
	return wt.Settle(ctx, repo, keys)
}

// queue writes jobs at the back of their repository's line (a job queued
// again moves there too: it must follow what was queued in between) and
// wakes the loop, outside synchronous mode.
func (wt *Worker) queue(repo cache.Repo, keys []string, jobs []index.Job) error {
	wt.qmu.Lock()
	// Enqueued orders the line: it only grows, whatever the clock does.
	now := wt.opts.Now()
	if !now.After(wt.last) {
		now = wt.last.Add(time.Nanosecond)
	}
	wt.last = now
	for i, key := range keys {
		j := jobs[i]
		if old, err := wt.q.Job(key); err == nil {
			j.Attempts, j.LastError = old.Attempts, old.LastError
		}
		j.Enqueued, j.NextTry = now, now
		if wt.opts.Sync {
			j.NextTry = now.Add(wt.opts.Timeout) // the request runs it; the loop stays off
		}
		if err := wt.q.PutJob(key, j); err != nil {
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
		wt.signal()
	}
	return nil
}

// Settle, in synchronous mode, runs repo's line up to keys and returns
// its failure; otherwise the Worker does that.
func (wt *Worker) Settle(ctx context.Context, repo cache.Repo, keys []string) error {
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
func (wt *Worker) runLine(ctx context.Context, repo string, keys []string) error {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var line []string
	err := wt.q.Jobs(func(key string, j index.Job) error {
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
		err := wt.attempt(ctx, repo, key)
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
func (wt *Worker) dropSuperseded(repo, tag string, d digest.Digest) {
	wt.q.Jobs(func(key string, j index.Job) error {
		if j.Op == "" && j.Repo == repo && j.Tag == tag && j.Digest != d {
			wt.q.DeleteJob(key)
			wt.log.WithFields(logrus.Fields{"repo": repo, "tag": tag, "digest": j.Digest}).
				Info("queued write-through superseded by a newer push of the tag")
		}
		return nil
	})
}

// finish removes an attempted job, unless a request queued it again
// meanwhile: then the new one stands, at its new place.
func (wt *Worker) finish(key string, j index.Job) error {
	wt.qmu.Lock()
	defer wt.qmu.Unlock()
	if cur, err := wt.q.Job(key); err != nil || !cur.Enqueued.Equal(j.Enqueued) {
		return nil
	}
	if j.Op != "" {
		wt.tombstones.remove(key)
	}
	return wt.q.DeleteJob(key)
}

// reschedule writes a failed job back, unless a request queued it again
// meanwhile.
func (wt *Worker) reschedule(key string, j index.Job) error {
	wt.qmu.Lock()
	defer wt.qmu.Unlock()
	if cur, err := wt.q.Job(key); err != nil || !cur.Enqueued.Equal(j.Enqueued) {
		return nil
	}
	return wt.q.PutJob(key, j)
}
