package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wharf-mirror/wharf/cache/records"
)

// The catalog across replicas: every replica lists the repositories a
// manifest was pushed to (repos/, written with the push) and those any
// replica mirrored (mirrored/, one record per repository, written in the
// background the first time this replica records a mirrored tag of it
// since it started). A mirrored pull costs nothing more: the record rides
// on the tag's own background write, once per repository per run (a set
// in memory says which were written), and a pull served from the cache
// writes no tag at all. The catalog, which is rare, costs a listing per
// kind, one record per repository whatever its tags.

// mirroredRepos remembers which repositories' mirrored/ record this
// replica has written, or queued, and when. A record is written again
// once mirroredAgain has passed: wharf gc deletes the record of a
// repository with no tag records left, and one written by this replica
// as gc looked would otherwise stay lost until it restarts. Bounded: past
// sharedPending entries it is cleared, which costs a repeated write of a
// record that exists.
type mirroredRepos struct {
	mu   sync.Mutex
	seen map[Repo]time.Time
}

// mirroredAgain is how long a replica trusts the mirrored/ record it
// wrote to be there.
const mirroredAgain = time.Hour

// first reports whether repo was not seen within mirroredAgain of now,
// and marks it seen now.
func (m *mirroredRepos) first(repo Repo, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at, ok := m.seen[repo]; ok && now.Sub(at) < mirroredAgain {
		return false
	}
	if m.seen == nil || len(m.seen) >= sharedPending {
		m.seen = map[Repo]time.Time{}
	}
	m.seen[repo] = now
	return true
}

func (m *mirroredRepos) forget(repo Repo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, repo)
}

// shareMirroredRepoLater records, in the background, that repo is
// mirrored, the first time this replica records one of its tags.
func (c *Cache) shareMirroredRepoLater(repo Repo) {
	if c.rec == nil || !c.rec.mirrored.first(repo, c.opts.Now()) {
		return
	}
	key, err := sharedMirroredKey(repo)
	if err != nil {
		return
	}
	put := func(ctx context.Context) error {
		err := c.putShared(ctx, key, struct{}{})
		if err != nil {
			c.rec.mirrored.forget(repo) // the next tag recorded tries again
		}
		return err
	}
	if !c.later("put", key, put) {
		c.rec.mirrored.forget(repo)
	}
}

// catalogFor is how long a listing of the bucket's repositories answers
// the catalog: every request listing all of repos/ and mirrored/ would
// let clients make the bucket list its records at will.
const catalogFor = 5 * time.Second

// sharedCatalog is the bucket's repositories as last listed, and the one
// listing in progress that concurrent catalog requests share.
type sharedCatalog struct {
	flight singleflight.Group
	mu     sync.Mutex
	at     time.Time // when names were listed
	names  []string
}

// forget drops the last listing: the next catalog lists again.
func (s *sharedCatalog) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = nil
}

// sharedRepositories adds the repositories recorded in the bucket, pushed
// to or mirrored through any replica, to names (this replica's, sorted),
// sorted; names alone while the bucket cannot answer. The bucket's are
// listed at most every catalogFor, with those this replica knows have
// pushed tags (announced, or listed every PushedReposEvery) added at once.
func (c *Cache) sharedRepositories(ctx context.Context, names []string) []string {
	if !c.readThrough() {
		return names
	}
	listed, err := c.listedRepositories(ctx)
	if err != nil {
		return names
	}
	all := slices.Concat(names, listed, c.rec.repos.names())
	slices.Sort(all)
	return slices.Compact(all)
}

// listedRepositories lists repos/ and mirrored/, or answers the listing
// of the last catalogFor. Concurrent callers share one listing, bounded
// by RecordsReadTimeout and not by the first caller leaving; each stops
// waiting when its own ctx ends.
func (c *Cache) listedRepositories(ctx context.Context) ([]string, error) {
	cat := &c.rec.catalog
	cat.mu.Lock()
	if cat.names != nil && c.opts.Now().Sub(cat.at) < catalogFor {
		names := cat.names
		cat.mu.Unlock()
		return names, nil
	}
	cat.mu.Unlock()
	ch := cat.flight.DoChan("", func() (any, error) {
		ctx, cancel := c.readCtx(context.WithoutCancel(ctx))
		defer cancel()
		at := c.opts.Now()
		names := []string{}
		for _, dir := range []string{sharedReposDir, sharedMirroredDir} {
			err := c.rec.store.List(ctx, dir, func(key string) error {
				if repo, ok := parseRepoKey(dir, key); ok {
					names = append(names, repo.String())
				}
				return nil
			})
			if err != nil {
				c.sharedFailed("list", dir, err)
				return nil, err
			}
		}
		cat.mu.Lock()
		cat.names, cat.at = names, at
		cat.mu.Unlock()
		return names, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]string), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// parseRepoKey takes apart a key listed under dir, repos/ or mirrored/
// (spelled alike below their dirs); false for a key no builder makes.
func parseRepoKey(dir, key string) (Repo, bool) {
	rest, ok := strings.CutPrefix(key, dir)
	if !ok {
		return Repo{}, false
	}
	k, ok := parseSharedKey(sharedReposDir + rest)
	return k.repo, ok && k.kind == sharedReposDir
}

// sweepMirrored deletes the mirrored/ record of each repository that has
// no tag record left in the bucket, mirrored (mirror/) or pushed (tags/),
// so the catalog stops listing it; wharf gc runs it while it holds the
// cluster's eviction lease. A replica that records a tag of it again
// writes its record again (within mirroredAgain: see mirroredRepos).
func (c *Cache) sweepMirrored(ctx context.Context) (deleted int, err error) {
	var keys []string
	if err := c.rec.store.List(ctx, sharedMirroredDir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return 0, fmt.Errorf("list %s: %w", sharedMirroredDir, err)
	}
	defer c.rec.catalog.forget() // this replica's catalog says so at once
	for _, k := range keys {
		repo, ok := parseRepoKey(sharedMirroredDir, k)
		if !ok {
			continue
		}
		tagged, err := c.anyTagRecord(ctx, repo)
		if err != nil {
			return deleted, err
		}
		if tagged {
			continue
		}
		if err := c.rec.store.Delete(ctx, k); err != nil && !errors.Is(err, records.ErrNotFound) {
			return deleted, fmt.Errorf("delete %s: %w", k, err)
		}
		deleted++
	}
	return deleted, nil
}

// anyTagRecord reports whether the bucket holds a tag record of repo,
// mirrored or pushed.
func (c *Cache) anyTagRecord(ctx context.Context, repo Repo) (bool, error) {
	mirrored, err := sharedMirrorRepoPrefix(repo)
	if err != nil {
		return false, err
	}
	pushed, err := sharedTagsPrefix(repo)
	if err != nil {
		return false, err
	}
	for _, prefix := range []string{mirrored, pushed} {
		if found, err := records.Any(ctx, c.rec.store, prefix); err != nil {
			return false, fmt.Errorf("list %s: %w", prefix, err)
		} else if found {
			return true, nil
		}
	}
	return false, nil
}
