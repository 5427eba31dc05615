package cache

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/evict"
)

// wharf gc is eviction's reachability walk run to the end: it reads the
// same plan (evictionPlan) and removes through the same evictOne, so it
// skips content a client holds and keeps what pins protect.

// GCReport is what GC removed (or would remove, on a dry run).
type GCReport struct {
	Items int
	Bytes int64
}

// GC removes stored content no tag reaches: not named by a tag (cached or
// pushed), not pinned, and not referenced by anything that is. Blobs
// fetched by digest alone, and manifests of tags that moved on, go. With
// records it asks the cluster's (sharedgc.go). It stops early, with what
// it removed so far, when ctx ends.
func (c *Cache) GC(ctx context.Context, dryRun bool) (GCReport, error) {
	c.evictRun.Lock()
	defer c.evictRun.Unlock()
	if c.rec != nil {
		return c.sharedGC(ctx, dryRun)
	}
	var rep GCReport
	plan, err := c.evictionPlan(ctx)
	if err != nil {
		return rep, err
	}
	tagged, err := c.taggedDigests()
	if err != nil {
		return rep, err
	}
	return c.collect(ctx, plan.Unreachable(tagged), dryRun)
}

// collect removes items (or only counts them, on a dry run), skipping
// any a client holds, until ctx ends.
func (c *Cache) collect(ctx context.Context, items []evict.Item, dryRun bool) (GCReport, error) {
	var rep GCReport
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if dryRun || c.evictOne(ctx, it.Digest, it.Size) {
			rep.Items++
			rep.Bytes += it.Size
		}
	}
	return rep, nil
}

// taggedDigests is what every tag of every repository names.
func (c *Cache) taggedDigests() ([]digest.Digest, error) {
	roots, err := c.taggedRoots()
	if err != nil {
		return nil, err
	}
	return rootDigests(roots), nil
}

// taggedRoots is what every tag of every repository names, each with the
// media type its record says: the index may know a manifest by size
// alone (adopted from a shared store's listing), and the tag is then
// what says it is a manifest whose references to keep.
func (c *Cache) taggedRoots() ([]root, error) {
	repos, err := c.index.Repositories()
	if err != nil {
		return nil, err
	}
	var out []root
	for _, repo := range repos {
		named, err := c.namedRoots(repo)
		if err != nil {
			return nil, err
		}
		out = append(out, named...)
	}
	return out, nil
}

// namedBy is what repo's tags name, cached and pushed: the roots of what
// the repository holds.
func (c *Cache) namedBy(repo string) ([]digest.Digest, error) {
	roots, err := c.namedRoots(repo)
	if err != nil {
		return nil, err
	}
	return rootDigests(roots), nil
}

func (c *Cache) namedRoots(repo string) ([]root, error) {
	recs, err := c.index.TagRecords(repo, "")
	if err != nil {
		return nil, err
	}
	out := make([]root, 0, len(recs))
	for _, r := range recs {
		out = append(out, root{r.Digest, r.MediaType})
	}
	return out, nil
}

func rootDigests(roots []root) []digest.Digest {
	out := make([]digest.Digest, 0, len(roots))
	for _, r := range roots {
		out = append(out, r.digest)
	}
	return out
}
