package cache

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
)

// The seam the operator's tools read a whole store through (package
// inspect: wharf verify --repair, wharf du, and the status page's
// holdings). They judge and report; the cache keeps the locks and the
// bookkeeping: what they remove goes through removeLocked, the path
// eviction and deletes take, so the usage totals, their metrics, the hot
// manifests and links and the access log forget it with the index.

// Item is one stored item as the index records it.
type Item struct {
	Digest    digest.Digest
	Size      int64
	MediaType string          // set for manifests, "" for blobs
	Refs      []digest.Digest // what a manifest references: its children and blobs
}

// Items calls fn with every item the index records, and stops at the
// first error fn returns. It reads one index snapshot and takes no lock
// of the cache's, so fn must not call back into the cache.
func (c *Cache) Items(fn func(Item) error) error {
	return c.index.Blobs(func(d digest.Digest, m index.BlobMeta) error {
		return fn(Item{Digest: d, Size: m.Size, MediaType: m.MediaType, Refs: m.Refs})
	})
}

// RepoSummary is one repository's tags and counters, as the index holds
// them.
type RepoSummary struct {
	Repo string // "<upstream>/<path>", as Repo.String writes it
	// Tags and Pushed count the tags cached from the upstream and those
	// pushed to wharf itself.
	Tags, Pushed int
	// Named is what its tags name, cached and pushed: the roots of what
	// the repository holds.
	Named []digest.Digest
	Pulls int64 // manifest requests since the store was created
	Hits  int64 // of which the cache answered
}

// RepoSummaries lists every repository the index knows. It writes the
// access log's pending counters first, so that Pulls and Hits include the
// requests served so far.
func (c *Cache) RepoSummaries() ([]RepoSummary, error) {
	c.flushAccess()
	counters, err := c.index.Stats()
	if err != nil {
		return nil, err
	}
	repos, err := c.index.Repositories()
	if err != nil {
		return nil, err
	}
	out := make([]RepoSummary, 0, len(repos))
	for _, repo := range repos {
		s := RepoSummary{Repo: repo, Pulls: counters[repo].Pulls, Hits: counters[repo].Hits}
		// A repository whose tag keys cannot be listed still has its
		// size and counters worth reporting: count its tags as none.
		tags, _ := c.index.Tags(repo)
		local, _ := c.index.LocalTags(repo)
		s.Tags, s.Pushed = len(tags), len(local)
		if s.Named, err = c.namedBy(repo); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Remove forgets d and deletes its bytes through the one locked removal
// path, whatever references it (the caller has judged it: wharf verify
// --repair removes content that no longer hashes to its digest, so that
// the next pull fetches it again). It takes the content lock itself and
// reads d's size from the index under it.
func (c *Cache) Remove(d digest.Digest) error {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	meta, err := c.index.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return fmt.Errorf("remove %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", d, err)
	}
	if err := c.removeLocked(d, meta.Size); err != nil {
		return fmt.Errorf("remove %s: %w", d, err)
	}
	return nil
}
