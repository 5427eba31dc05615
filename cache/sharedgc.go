package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/evict"
	"github.com/wharf-mirror/wharf/cache/index"
)

// wharf gc on a replica with records collects over the cluster's view, not
// this replica's alone:
//
//   - It first walks the store and adopts what its index does not know
//     (by size, unread, as the leader's eviction does), so content only
//     other replicas know is collected too when nothing reaches it.
//   - Roots are every tag record in the bucket, pushed (tags/) and
//     mirrored (mirror/, every replica's), and this replica's own tags; a
//     manifest they name is read from the store when the index lacks its
//     references, and an index's child manifests with it.
//   - Content a link record pins, through any replica, is kept with what
//     it references: each candidate is asked of the bucket before it goes.
//
// The caller runs it while no replica evicts from the bucket (wharf gc
// holds the cluster's "evict" lease). A bucket that cannot answer fails
// the run before anything is removed.
func (c *Cache) sharedGC(ctx context.Context, dryRun bool) (GCReport, error) {
	stored, err := c.walkStored(ctx)
	if err != nil {
		return GCReport{}, fmt.Errorf("walk the store: %w", err)
	}
	var roots []root
	add := func(r root) error { roots = append(roots, r); return nil }
	for _, dir := range []string{sharedTagsDir, sharedMirrorDir} {
		if err := c.sharedTagRoots(ctx, dir, add); err != nil {
			return GCReport{}, fmt.Errorf("the shared tag records: %w", err)
		}
	}
	local, err := c.taggedRoots() // a record still queued is here
	if err != nil {
		return GCReport{}, err
	}
	roots = append(roots, local...)
	seen := map[digest.Digest]bool{}
	reached, err := c.knowTrees(ctx, roots, seen)
	if err != nil {
		return GCReport{}, err
	}
	asked := map[digest.Digest]bool{} // candidates the bucket's links were asked about
	for {
		plan, err := c.evictionPlan(ctx)
		if err != nil {
			return GCReport{}, err
		}
		candidates := plan.Unreachable(reached)
		var pinned []root
		for _, it := range candidates {
			if err := ctx.Err(); err != nil {
				return GCReport{}, err
			}
			if asked[it.Digest] {
				continue
			}
			asked[it.Digest] = true
			// Pinned is true too when the bucket cannot say. The links'
			// media type says a manifest the index may know by size alone.
			if p, mediaType := c.sharedPin(ctx, it.Digest); p {
				pinned = append(pinned, root{it.Digest, mediaType})
			}
		}
		if err := ctx.Err(); err != nil {
			return GCReport{}, err
		}
		if len(pinned) == 0 {
			if dryRun { // what the index knows and the bucket lost is not there to remove
				candidates = slices.DeleteFunc(candidates, func(it evict.Item) bool { return !stored[it.Digest] })
			}
			rep, err := c.collect(ctx, candidates, dryRun)
			if err != nil || dryRun {
				return rep, err
			}
			n, err := c.sweepMirrored(ctx)
			if err != nil {
				return rep, fmt.Errorf("the catalog's mirrored/ records: %w", err)
			}
			if n > 0 {
				c.log.WithField("records", n).Info("gc: deleted the catalog's records of mirrored repositories with no tag left")
			}
			return rep, nil
		}
		// Pinned through some replica: a root, and what it references
		// with it; plan again.
		more, err := c.knowTrees(ctx, pinned, seen)
		if err != nil {
			return GCReport{}, err
		}
		reached = append(reached, more...)
	}
}

// adoptStored indexes, by size, content the store holds that the index
// does not know: put there by another replica. A shared store holds only
// verified content, so it is not read.
func (c *Cache) adoptStored(ctx context.Context) error {
	_, err := c.walkStored(ctx)
	return err
}

// walkStored is adoptStored, and returns the digests the store holds.
func (c *Cache) walkStored(ctx context.Context) (map[digest.Digest]bool, error) {
	stored := map[digest.Digest]bool{}
	return stored, c.store.Walk(ctx, func(d digest.Digest, size int64) error {
		stored[d] = true
		_, err := c.index.Blob(d)
		if errors.Is(err, index.ErrNotFound) {
			return c.recordContent(d, size, "", nil, false)
		}
		return err
	})
}
