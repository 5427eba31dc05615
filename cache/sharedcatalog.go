package cache

import (
	"context"
	"slices"
	"strings"
	"sync"
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
// replica has written, or queued, since it started. Bounded: past sharedPending
// entries it is cleared, which costs a repeated write of a record that
// exists.
type mirroredRepos struct {
	mu   sync.Mutex
	seen map[Repo]bool
}

// first reports whether repo was not seen yet, and marks it seen.
func (m *mirroredRepos) first(repo Repo) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[repo] {
		return false
	}
	if m.seen == nil || len(m.seen) >= sharedPending {
		m.seen = map[Repo]bool{}
	}
	m.seen[repo] = true
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
	if c.rec == nil || !c.rec.mirrored.first(repo) {
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

// sharedRepositories adds the repositories recorded in the bucket, pushed
// to or mirrored through any replica, to names (this replica's, sorted),
// sorted; names alone while the bucket cannot answer.
func (c *Cache) sharedRepositories(ctx context.Context, names []string) []string {
	if !c.readThrough() {
		return names
	}
	ctx, cancel := c.readCtx(ctx)
	defer cancel()
	all := slices.Clone(names)
	for _, dir := range []string{sharedReposDir, sharedMirroredDir} {
		err := c.rec.store.List(ctx, dir, func(key string) error {
			if repo, ok := parseRepoKey(dir, key); ok {
				all = append(all, repo.String())
			}
			return nil
		})
		if err != nil {
			c.sharedFailed("list", dir, err)
			return names
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
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
