package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Which repositories can have pushed tags. Reading a pushed tag's record
// through to the bucket costs every pull by tag one GET; most pulls are
// of mirrored repositories, which have none. So each replica keeps the
// set of repositories a manifest was pushed to (the bucket's repos/
// records, which are never deleted, and, once at start, the repositories
// of tags/ records, for pushes from before repos/ records existed), and a
// pull by tag in a repository outside it does not read the bucket:
//
//   - The replica that takes the first push into a repository it does not
//     know writes the records, then tells every live peer (Announcer)
//     before the push is acknowledged, so that they read its tags through
//     at once.
//   - Every replica lists repos/ again every PushedReposEvery (5 s by
//     default): a peer the announcement did not reach knows within that.
//     Meanwhile its first pull of the tag asks the tag's owner, which
//     answers the pushed tag if the announcement reached it.
//   - Without an Announcer (a replica on storage.s3 with no cluster), a
//     pull of a tag this replica holds no record of still reads the
//     bucket first, so a first pull is exact; a tag it holds as mirrored
//     is shadowed by a push through another process within the period.
//   - Until a listing has succeeded, and when none has for three periods,
//     every pull reads through, as if every repository had pushed tags.
//
// A repository in the set stays in it (pushed tags can come back), and
// its tags are read through as before: a tag moved or deleted there is
// what every replica answers at once.

// Announcer tells the other replicas that repo has pushed tags (package
// peer sends it to every live peer, each bounded by a short timeout). It
// returns once each has answered or timed out; a peer it did not reach
// learns it from its next listing.
type Announcer interface {
	AnnouncePushed(ctx context.Context, repo Repo)
}

// pushedReposEvery is the default Options.PushedReposEvery.
const pushedReposEvery = 5 * time.Second

// pushedRepos is the set of repositories that can have pushed tags.
type pushedRepos struct {
	listed atomic.Int64 // unix nanoseconds of the last listing that succeeded; 0: none yet
	mu     sync.RWMutex
	set    map[Repo]struct{}
}

// add puts repo in the set; true if it was not there.
func (p *pushedRepos) add(repo Repo) bool {
	p.mu.RLock()
	_, ok := p.set[repo]
	p.mu.RUnlock()
	if ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.set[repo]; ok {
		return false
	}
	p.set[repo] = struct{}{}
	return true
}

// names lists the set's repositories by name.
func (p *pushedRepos) names() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.set))
	for r := range p.set {
		out = append(out, r.String())
	}
	return out
}

func (p *pushedRepos) has(repo Repo) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.set[repo]
	return ok
}

// readPushedOnPull reports whether a pull of repo's tag with the Accept
// set accept must read the pushed tag's record.
func (c *Cache) readPushedOnPull(repo Repo, tag, accept string) bool {
	if c.rec == nil || !c.readThrough() {
		return true // the local index answers, as it always has
	}
	p := &c.rec.repos
	listed := p.listed.Load()
	if listed == 0 || time.Since(time.Unix(0, listed)) > 3*c.opts.PushedReposEvery {
		return true
	}
	if p.has(repo) {
		return true
	}
	if c.opts.Announcer != nil {
		return false
	}
	_, held := c.tagRecord(repo, tag, accept) // kept hot for the caller
	return !held
}

// NotePushed records that repo has pushed tags: another replica
// announced a push into it (package peer's route).
func (c *Cache) NotePushed(repo Repo) {
	if c.rec != nil {
		c.rec.repos.add(repo)
	}
}

// pushedInto adds repo, to which tags were just pushed through this
// replica, to the set and, with announce (repo was new here before the
// push wrote its records), announces it to the other replicas before the
// push is acknowledged. Two pushes racing into a new repository may both
// announce it; a peer takes that twice.
func (c *Cache) pushedInto(ctx context.Context, repo Repo, announce bool) {
	if c.rec == nil {
		return
	}
	c.rec.repos.add(repo)
	if announce && c.opts.Announcer != nil {
		c.opts.Announcer.AnnouncePushed(ctx, repo)
	}
}

// listPushedRepos adds the repositories of repos/ records to the set. A
// push writes its repository's record before any of its tags (and
// always has, since tags/ records exist), so repos/ names every
// repository tags/ does, in one record per repository.
func (c *Cache) listPushedRepos(ctx context.Context) error {
	return c.rec.store.List(ctx, sharedReposDir, func(key string) error {
		if k, ok := parseSharedKey(key); ok && k.kind == sharedReposDir {
			c.rec.repos.add(k.repo)
		}
		return nil
	})
}

// listPushedReposFirst lists, at Open, the repositories with pushed
// tags; on failure every pull reads through until watchPushedRepos
// lists them.
func (c *Cache) listPushedReposFirst() {
	ctx, cancel := context.WithTimeout(context.Background(), pushedReposFirstTimeout)
	defer cancel()
	start := time.Now()
	if err := c.listPushedRepos(ctx); err != nil {
		c.pushedReposFailed(err)
		return
	}
	c.rec.repos.listed.Store(start.UnixNano())
}

// pushedReposFirstTimeout bounds the listing at Open.
const pushedReposFirstTimeout = 30 * time.Second

func (c *Cache) pushedReposFailed(err error) {
	c.opts.Metrics.RecordsError("list")
	c.log.WithError(err).Warn("shared records: listing the repositories with pushed tags; pulls by tag read through meanwhile")
}

// watchPushedRepos lists repos/ every PushedReposEvery until stop.
func (c *Cache) watchPushedRepos(stop <-chan struct{}) {
	defer c.bg.Done()
	tick := time.NewTicker(c.opts.PushedReposEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		start := time.Now()
		if err := c.listPushedRepos(c.life); err != nil {
			if c.life.Err() == nil {
				c.pushedReposFailed(err)
			}
			continue
		}
		c.rec.repos.listed.Store(start.UnixNano())
	}
}
