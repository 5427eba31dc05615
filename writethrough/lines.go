package writethrough

import (
	"context"
	"sync"
	"time"

	"github.com/wharf-mirror/wharf/cache/index"
)

// The Worker's loop finds due jobs and hands each repository's to a
// goroutine of its own (a line), which runs them in order and stops at
// the first failure. Lines of different repositories run side by side;
// an attempt locks its repository only, which also keeps a request in
// synchronous mode and the Worker from running one repository's jobs at
// once.

// loop runs due jobs until Close. The first pass after a start runs every
// job at once, whatever its backoff said: the restart may be the fix.
func (wt *Worker) loop() {
	defer wt.done.Done()
	next := wt.runDue(true)
	for {
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(wt.opts.Now()), 10*time.Millisecond)
		}
		if wt.opts.Shared {
			wait = min(wait, wt.opts.Poll) // other replicas queue jobs too
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

// signal wakes the loop, which looks at the queue again.
func (wt *Worker) signal() {
	select {
	case wt.wake <- struct{}{}:
	default:
	}
}

// runDue starts a line for each repository with due jobs, in order, and
// returns when the next job is due (zero: none waiting). A job behind one
// of its repository that is not due waits for it. A repository whose line
// runs already, or one over Parallel, is left to the next pass: the end of
// a line wakes the loop.
func (wt *Worker) runDue(all bool) time.Time {
	wt.passes.Add(1)
	lead := wt.leading()
	if lead == nil {
		return time.Time{} // another replica runs the queue
	}
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	lines := map[string][]string{}
	var repos []string
	blocked := map[string]bool{}
	now := wt.opts.Now()
	err := wt.q.Jobs(func(key string, j index.Job) error {
		switch {
		case blocked[j.Repo]:
		case all || !j.NextTry.After(now):
			if lines[j.Repo] == nil {
				repos = append(repos, j.Repo)
			}
			lines[j.Repo] = append(lines[j.Repo], key)
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
	for _, repo := range repos {
		wt.start(lead, repo, lines[repo])
	}
	return next
}

// start runs repo's due jobs (keys, in order) in a goroutine of their
// own under lead, unless one runs repo already or Parallel do.
func (wt *Worker) start(lead context.Context, repo string, keys []string) {
	wt.busyMu.Lock()
	defer wt.busyMu.Unlock()
	if wt.busy[repo] || len(wt.busy) >= wt.opts.Parallel || lead.Err() != nil {
		return
	}
	wt.busy[repo] = true
	wt.done.Add(1) // the loop's own count keeps this off a finished Wait
	wt.lines.Add(1)
	go func() {
		defer wt.done.Done()
		defer wt.lines.Done()
		wt.runKeys(lead, repo, keys)
		wt.busyMu.Lock()
		delete(wt.busy, repo)
		wt.busyMu.Unlock()
		wt.signal()
	}()
}

// runKeys attempts keys in order and stops at the first failure: the
// jobs behind it wait for its retry.
func (wt *Worker) runKeys(lead context.Context, repo string, keys []string) {
	for _, key := range keys {
		if lead.Err() != nil {
			return
		}
		if err := wt.attempt(lead, repo, key); err != nil && !dropped(err) {
			return
		}
	}
}

// repoLocks holds one mutex per repository with an attempt running or
// waiting, and drops it when none is.
type repoLocks struct {
	mu   sync.Mutex
	held map[string]*repoLock
}

type repoLock struct {
	sync.Mutex
	users int // guarded by repoLocks.mu
}

// lock locks repo and returns its unlock.
func (l *repoLocks) lock(repo string) func() {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*repoLock{}
	}
	rl := l.held[repo]
	if rl == nil {
		rl = &repoLock{}
		l.held[repo] = rl
	}
	rl.users++
	l.mu.Unlock()
	rl.Lock()
	return func() {
		rl.Unlock()
		l.mu.Lock()
		if rl.users--; rl.users == 0 {
			delete(l.held, repo)
		}
		l.mu.Unlock()
	}
}
