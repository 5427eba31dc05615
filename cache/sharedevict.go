package cache

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/evict"
	"github.com/wharf-mirror/wharf/cache/index"
)

// Eviction from a store the replicas of a cluster share (Options.
// SharedEviction). One replica at a time evicts, the one holding the
// cluster's lease (LeadEviction runs as its job), so two replicas never
// delete on two partial views at once; the others never delete shared
// content (their local copies are the tier's to evict). The leader
// measures usage by walking the store, since every replica adds to it,
// and chooses what goes by the same image-wise policy as one node over
// what its own index knows: its fills, its pushes, what it learned from
// the shared records, and what each walk finds that it did not know
// (adopted by its size, as reconcile does at start). Content pinned
// through any replica is kept: the bucket's link records are asked
// before each delete.

// LeadEviction evicts from the shared store until ctx ends: it walks the
// store every SharedEvictEvery and evicts down to the low watermark when
// the store is past the high one. Without SharedEviction or a cap it
// only waits for ctx.
func (c *Cache) LeadEviction(ctx context.Context) {
	if !c.opts.SharedEviction || c.opts.MaxSize <= 0 {
		<-ctx.Done()
		return
	}
	every := c.opts.SharedEvictEvery
	if every <= 0 {
		every = time.Minute
	}
	c.log.Info("eviction: leading the shared store's")
	t := time.NewTimer(0)
	defer t.Stop()
	stale, reports := evictingSeen{}, reportsSeen{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.sweepEvicting(ctx, stale)
		if freed, n, err := c.evictShared(ctx, reports); err != nil {
			c.log.WithError(err).Warn("eviction: the shared store")
		} else if n > 0 {
			c.log.WithField("items", n).WithField("bytes", freed).Info("evicted least recently used content from the shared store")
		}
		t.Reset(every)
	}
}

// evictShared walks the store and, past the high watermark, evicts down
// to the low one.
func (c *Cache) evictShared(ctx context.Context, reports reportsSeen) (freed int64, items int, err error) {
	var used int64
	if err := c.store.Walk(ctx, func(d digest.Digest, size int64) error {
		used += size
		if _, err := c.index.Blob(d); errors.Is(err, index.ErrNotFound) {
			// Put there by another replica since this one started (as
			// reconcile adopts at start): verified, indexed by its size,
			// unread, newest of all in the order of eviction. Pins are
			// asked of the bucket's link records before any delete.
			if err := c.recordContent(d, size, "", nil, false); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	c.opts.Metrics.SetSharedSize(used)
	if used <= c.highWater() {
		return 0, 0, nil
	}
	c.evictRun.Lock()
	defer c.evictRun.Unlock()
	if err := c.mergeAccessReports(ctx, reports); err != nil { // the other replicas' readers (sharedaccess.go)
		return 0, 0, err
	}
	plan, err := c.freshPlan(ctx)
	if err != nil {
		return 0, 0, nil // logged
	}
	target := c.lowWater()
	// The batch's evicting records, held until its deletes are done, and
	// the readers' reports after them (sharedbatch.go): then plan again.
	release, err := c.takeBatch(ctx, plan, used-target, reports)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	if c.evictBatch != nil {
		if plan, err = c.freshPlan(ctx); err != nil {
			return 0, 0, nil // logged
		}
	}
	var gone int64 // freed so far: the plan adds up only at its end
	freed, items = plan.Evict(
		func() bool { return used-gone <= target || ctx.Err() != nil },
		func(it evict.Item) bool {
			if _, taken := c.evictBatch[it.Digest]; c.evictBatch != nil && !taken {
				return false // not in the batch the readers were asked about
			}
			if !c.evictOne(ctx, it.Digest, it.Size) {
				return false
			}
			gone += it.Size
			return true
		},
	)
	c.opts.Metrics.SetSharedSize(used - freed)
	return freed, items, nil
}
