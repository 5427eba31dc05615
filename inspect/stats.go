package inspect

import (
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// StatsStore is what StatsOf needs of a store; *cache.Cache satisfies it.
type StatsStore interface {
	// Items lists what the index records.
	Items(fn func(cache.Item) error) error
	// RepoSummaries lists each repository's tags and counters.
	RepoSummaries() ([]cache.RepoSummary, error)
}

// Stats describes what the store holds.
type Stats struct {
	Bytes     int64
	Items     int64 // blobs and manifests
	Manifests int64
	Tags      int64 // distinct repo:tag names cached or pushed
	Pulls     int64 // manifest requests since the store was created
	Hits      int64 // of which the cache answered
	Repos     []RepoUsage
}

// RepoUsage is one repository's share.
type RepoUsage struct {
	Repo  string
	Bytes int64 // content its tags reach (shared blobs count for each repo)
	Tags  int
	// Pushed counts the tags pushed to wharf itself (not mirrored): a
	// repository with any is the site's own, which an operator backs up
	// and eviction keeps.
	Pushed int
	Pulls  int64
	Hits   int64
}

// HitRatio is Hits/Pulls, 0 when nothing was pulled.
func (s Stats) HitRatio() float64 {
	if s.Pulls == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Pulls)
}

// StatsOf computes what s holds, by repository, the largest first. It
// walks the whole index: callers that show it often keep it a while.
func StatsOf(s StatsStore) (Stats, error) {
	var st Stats
	items := map[digest.Digest]cache.Item{}
	if err := s.Items(func(it cache.Item) error {
		items[it.Digest] = it
		st.Bytes += it.Size
		st.Items++
		if it.MediaType != "" {
			st.Manifests++
		}
		return nil
	}); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	repos, err := s.RepoSummaries()
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	for _, r := range repos {
		u := RepoUsage{Repo: r.Repo, Tags: r.Tags + r.Pushed, Pushed: r.Pushed, Pulls: r.Pulls, Hits: r.Hits}
		u.Bytes = reachable(items, r.Named)
		st.Tags += int64(u.Tags)
		st.Pulls += u.Pulls
		st.Hits += u.Hits
		st.Repos = append(st.Repos, u)
	}
	sort.Slice(st.Repos, func(i, j int) bool { return st.Repos[i].Bytes > st.Repos[j].Bytes })
	return st, nil
}

// reachable is the size of what roots reach through manifests'
// references, each item counted once.
func reachable(items map[digest.Digest]cache.Item, roots []digest.Digest) int64 {
	var bytes int64
	seen := map[digest.Digest]bool{}
	var add func(d digest.Digest)
	add = func(d digest.Digest) {
		it, ok := items[d]
		if !ok || seen[d] {
			return
		}
		seen[d] = true
		bytes += it.Size
		for _, r := range it.Refs {
			add(r)
		}
	}
	for _, d := range roots {
		add(d)
	}
	return bytes
}
