package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/evict"
	"github.com/wharf-mirror/wharf/cache/index"
)

// Eviction keeps the store under Options.MaxSize. When usage passes the high
// watermark, the evictor removes least recently used content until usage is
// under the low watermark. Package evict holds the policy: image-wise, so
// no kept manifest ever points at evicted content, and never pinned content
// (pushed here, or named by Options.Pins) or anything it references. This
// file holds the mechanism: when to run, how far, and the removal, which
// refuses a blob a client is reading right now. Evicted content is fetched
// again on its next pull.

// Pin protects a repository's tags from eviction: one tag, or every tag
// when Tag is empty.
type Pin struct {
	Repo Repo
	Tag  string
}

// maybeEvict wakes the evictor when usage passed the high watermark. It
// never blocks: one pending wake is enough.
func (c *Cache) maybeEvict() {
	if c.opts.SharedEviction || c.opts.MaxSize <= 0 || c.size.Load() <= c.highWater() {
		return
	}
	select {
	case c.evictCh <- struct{}{}:
	default:
	}
}

func (c *Cache) highWater() int64 { return int64(float64(c.opts.MaxSize) * c.opts.HighWatermark) }
func (c *Cache) lowWater() int64  { return int64(float64(c.opts.MaxSize) * c.opts.LowWatermark) }

// background runs the evictor and the access-log writer until ctx ends.
func (c *Cache) background(done <-chan struct{}) {
	defer c.bg.Done()
	tick := time.NewTicker(c.opts.AccessFlush)
	defer tick.Stop()
	for {
		select {
		case <-done:
			c.flushAccess()
			return
		case <-tick.C:
			c.flushAccess()
		case <-c.evictCh:
			if freed, n := c.Evict(c.evictTarget()); n > 0 {
				c.log.WithField("items", n).WithField("bytes", freed).Info("evicted least recently used content")
			}
		}
	}
}

// Evict removes least recently used content until usage is at most target
// bytes (or nothing evictable is left) and returns what it freed. It is
// safe to call while requests are served. Which content goes, in which
// order, is package evict's policy; the cache reads the records, stops
// at target, and removes.
func (c *Cache) Evict(target int64) (freed int64, items int) {
	c.evictRun.Lock()
	defer c.evictRun.Unlock()
	plan, err := c.freshPlan(c.life)
	if err != nil {
		return 0, 0
	}
	return plan.Evict(
		func() bool { return c.size.Load() <= target },
		func(it evict.Item) bool { return c.evictOne(c.life, it.Digest, it.Size) },
	)
}

// freshPlan flushes the access times and plans from the index; a failure
// is counted and logged here. c.evictRun must be held.
func (c *Cache) freshPlan(ctx context.Context) (*evict.Plan, error) {
	c.flushAccess()
	plan, err := c.evictionPlan(ctx)
	if err != nil {
		c.opts.Metrics.StoreError("index")
		c.log.WithError(err).Warn("eviction: reading the index")
	}
	return plan, err
}

// evictionPlan reads every content record with its last use, and resolves
// the pins, into a plan. ctx bounds the pins' resolution in the shared
// records: the leader's lease, or wharf gc's run.
func (c *Cache) evictionPlan(ctx context.Context) (*evict.Plan, error) {
	// Pins first: resolving them may upgrade index records with the
	// references of manifests read from the store.
	pinned, err := c.pinnedDigests(ctx)
	if err != nil {
		return nil, err
	}
	access, err := c.index.Accesses()
	if err != nil {
		return nil, err
	}
	items := make([]evict.Item, 0, c.count.Load()) // the count is a hint: records may come and go meanwhile
	err = c.index.Blobs(func(d digest.Digest, m index.BlobMeta) error {
		last, ok := access[d]
		if !ok {
			last = m.Added
		}
		items = append(items, evict.Item{Digest: d, Size: m.Size, Refs: m.Refs, Pinned: m.Pinned, LastUse: last})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evict.NewPlan(items, pinned), nil
}

// pinnedDigests resolves Options.Pins to the manifests their tags name:
// in the index, and with records in the bucket too (what any replica
// recorded for the tags: this one may never have pulled them), each
// manifest's references known to the index (sharedpins.go). A bucket
// that cannot answer fails the plan: nothing is evicted on a guess.
func (c *Cache) pinnedDigests(ctx context.Context) ([]digest.Digest, error) {
	var roots []root
	for _, p := range c.opts.Pins {
		recs, err := c.index.TagRecords(p.Repo.String(), p.Tag)
		if err != nil {
			c.log.WithError(err).WithField("repo", p.Repo.String()).Warn("eviction: resolving a pin")
			continue
		}
		for _, r := range recs {
			roots = append(roots, root{r.Digest, r.MediaType})
		}
	}
	if c.rec == nil || len(c.opts.Pins) == 0 {
		return rootDigests(roots), nil
	}
	shared, err := c.sharedPinRoots(ctx, c.opts.Pins)
	if err != nil {
		return nil, fmt.Errorf("resolve storage.pins in the shared records: %w", err)
	}
	return c.knowTrees(ctx, append(roots, shared...), map[digest.Digest]bool{})
}

// evictOne removes one item unless a client holds it open. A client that
// takes hold of d between the check and the removal either opened the file
// first, and reads on from its open file, or finds it gone and fetches it
// again: both are correct, and neither waits for the removal. ctx is the
// evictor's (a leader's lease, gc's run): its end stops the removal.
func (c *Cache) evictOne(ctx context.Context, d digest.Digest, size int64) bool {
	if c.held(d) {
		return false
	}
	hold := noRecord
	if c.rec != nil {
		// Kept when pinned through any replica; the handshake with
		// pushes is sharedevicting.go's. Also for wharf gc, which opens
		// the bucket without SharedEviction while replicas may push.
		var ok bool
		if hold, ok = c.markEvicting(ctx, d); !ok {
			return false
		}
	}
	gone, err := c.removeHeld(ctx, d, hold, false)
	if err != nil {
		c.log.WithError(err).WithField("digest", d).Warn("eviction")
	}
	if !gone {
		return false
	}
	c.opts.Metrics.Evicted(size)
	c.unshareEvictedLater(d)
	return true
}

// removeLocked forgets d and deletes its file; c.contentMu must be held.
// Every repository's link to d goes with the index entry (see
// index.ForgetContent). The index entry goes first: a reader that finds no entry fetches again,
// while a file without an entry would be invisible to eviction until the
// next start reconciles it.
func (c *Cache) removeLocked(d digest.Digest, size int64) error {
	return c.forgetLocked(c.life, d, size, c.store.Delete)
}

// forgetLocked is removeLocked with the file's removal given: del, with
// ctx.
func (c *Cache) forgetLocked(ctx context.Context, d digest.Digest, size int64, del func(context.Context, digest.Digest) error) error {
	repos, err := c.index.ForgetContent(d)
	if err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	for _, repo := range repos {
		c.links.Remove(linkKey(repo, d))
	}
	if err := del(ctx, d); err != nil {
		c.opts.Metrics.StoreError("write")
		return err
	}
	c.manifests.Remove(d)
	c.access.forget(d)
	c.opts.Metrics.SetCacheUsage(c.size.Add(-size), c.count.Add(-1))
	return nil
}

// hold marks d as being read (eviction skips it) until release.
func (c *Cache) hold(d digest.Digest) {
	c.inUseMu.Lock()
	c.inUse[d]++
	c.inUseMu.Unlock()
}

func (c *Cache) release(d digest.Digest) {
	c.inUseMu.Lock()
	if c.inUse[d]--; c.inUse[d] <= 0 {
		delete(c.inUse, d)
	}
	c.inUseMu.Unlock()
}

// held reports whether a client is reading d.
func (c *Cache) held(d digest.Digest) bool {
	c.inUseMu.Lock()
	defer c.inUseMu.Unlock()
	return c.inUse[d] > 0
}

// noSpace reacts to a full disk during a fill: evict down to the low
// watermark of what is stored now (or of the cap), in the background.
func (c *Cache) noSpace() {
	if c.opts.SharedEviction {
		// The shared store is not what filled up: the local tier's
		// copies are, and the tier evicts those under its own cap.
		c.log.Warn("disk full while filling a blob")
		return
	}
	c.log.Warn("disk full while filling a blob; evicting")
	c.pressure.Store(c.size.Load() * 85 / 100)
	select {
	case c.evictCh <- struct{}{}:
	default:
	}
}

// evictTarget is what a wake of the evictor frees down to: the low
// watermark, or lower after a full disk.
func (c *Cache) evictTarget() int64 {
	target := c.lowWater()
	if c.opts.MaxSize <= 0 {
		target = c.size.Load()
	}
	if p := c.pressure.Swap(0); p > 0 && p < target {
		target = p
	}
	return target
}
