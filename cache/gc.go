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
	plan, err := c.evictionPlan()
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
	repos, err := c.index.Repositories()
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, repo := range repos {
		named, err := c.namedBy(repo)
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
	recs, err := c.index.TagRecords(repo, "")
	if err != nil {
		return nil, err
	}
	out := make([]digest.Digest, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Digest)
	}
	return out, nil
}
