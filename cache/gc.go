package cache

import "github.com/opencontainers/go-digest"

// wharf gc is eviction's reachability walk run to the end: it reads the
// same plan (planEviction) and removes through the same evictOne, so it
// skips content a client holds and keeps what pins protect.

// GCReport is what GC removed (or would remove, on a dry run).
type GCReport struct {
	Items int
	Bytes int64
}

// GC removes stored content no tag reaches: not named by a tag (cached or
// pushed), not pinned, and not referenced by anything that is. Blobs
// fetched by digest alone, and manifests of tags that moved on, go.
func (c *Cache) GC(dryRun bool) (GCReport, error) {
	c.evictRun.Lock()
	defer c.evictRun.Unlock()
	var rep GCReport
	plan, err := c.planEviction()
	if err != nil {
		return rep, err
	}
	reach := map[digest.Digest]bool{}
	var mark func(d digest.Digest)
	mark = func(d digest.Digest) {
		if reach[d] {
			return
		}
		reach[d] = true
		if cd := plan[d]; cd != nil {
			for _, r := range cd.meta.Refs {
				mark(r)
			}
		}
	}
	repos, err := c.index.Repositories()
	if err != nil {
		return rep, err
	}
	for _, repo := range repos {
		recs, err := c.index.TagRecords(repo, "")
		if err != nil {
			return rep, err
		}
		for _, r := range recs {
			mark(r.Digest)
		}
	}
	for d, cd := range plan {
		if cd.keep {
			mark(d)
		}
	}
	for d, cd := range plan {
		if reach[d] {
			continue
		}
		rep.Items++
		rep.Bytes += cd.meta.Size
		if !dryRun && !c.evictOne(d, cd.meta.Size) {
			rep.Items--
			rep.Bytes -= cd.meta.Size
		}
	}
	return rep, nil
}
