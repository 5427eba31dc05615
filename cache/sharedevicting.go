package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
)

// The handshake between the replica evicting from the bucket and a push
// of the same digest through another replica. Without it the leader could
// find no pinned link to d, a push elsewhere find d in the bucket (and
// skip its upload), link it pinned and be acknowledged, and the leader
// then delete d: an acknowledged push lost. Each side writes before it
// reads what the other writes, over the bucket's strong read-after-write
// consistency:
//
//	leader, per item                      pusher, per digest linked pinned
//	1. put evicting/<d> if absent         1. put links/<d>/<repo> (pinned)
//	2. list links/<d>/: pinned? keep      2. get evicting/<d>: wait while it is there
//	3. delete d (links after, in the      3. stat d in the bucket: gone → ErrEvicted,
//	   background), then evicting/<d>       and forget d here so a retry uploads it
//
// If the pusher's read (2) missed the leader's record, the record was
// written after the pusher's link, so the leader's listing (2) sees the
// link and keeps d. If the pusher saw the record, it waits for the
// leader to finish and then finds d in the bucket or not: it acknowledges
// only content the bucket holds, and no leader deletes d after that (any
// later leader sees the link). The stat comes after the read whatever the
// push did before, since a whole round of eviction may have run between
// the push's upload (or its check that d was there) and its link.
//
// A leader that dies between its steps leaves an evicting record, which
// pushers wait out for at most evictingBound from its writing (by the
// store's clock: no replica's clock is compared), and which the next
// leader sweeps; or unpinned links to content it deleted, whose reads
// miss and fetch again. It never leaves a pinned link to missing content
// a pusher was not told of.

// evictingBound is how long an evicting record is honoured, from its
// writing by the store's clock: past it the record is a dead leader's.
// A live leader never deletes past half of it (measured from before it
// wrote the record), so the two never overlap. Cache.evictingFor holds
// it (tests shorten it).
const evictingBound = 2 * time.Minute

// sharedEvicting is the evicting record: who deletes, since when (by its
// own clock, for whoever reads the bucket; the bound uses the store's).
type sharedEvicting struct {
	By    string    `json:"by,omitempty"`
	Since time.Time `json:"since"`
}

// deleting is an evicting record held for one item's delete. The delete
// must be over by deadline (half the record's bound from before its
// writing: zero without records); done(landed) ends the hold: landed
// false says a delete was sent and failed, and may yet land, so the
// record stays for pushers to wait out (the next leader sweeps it).
type deleting struct {
	deadline time.Time
	done     func(landed bool)
}

// noRecord is the hold without shared records: no one to ask.
var noRecord = deleting{done: func(bool) {}}

// markEvicting is the leader's side for one item: it takes d's evicting
// record (unless its batch took it: sharedbatch.go) and asks whether
// anything keeps d. ok says d may be deleted now.
func (c *Cache) markEvicting(ctx context.Context, d digest.Digest) (hold deleting, ok bool) {
	keep := func() string {
		switch {
		case c.held(d) || c.heldElsewhere(d):
			return "held"
		case c.sharedPinned(ctx, d):
			return "pinned"
		}
		return ""
	}
	if t, ok := c.evictBatch[d]; ok {
		return deleting{deadline: t.start.Add(c.evictingFor / 2), done: func(landed bool) {
			if !landed {
				delete(c.evictBatch, d) // not released with the batch
			}
		}}, c.mayDelete(d, t.start, keep)
	}
	return c.markDeleting(ctx, d, keep)
}

// markUnlinked is markEvicting for a delete's removal of content no
// repository links here any more: kept while any link to it is left in
// the bucket, pinned or not.
func (c *Cache) markUnlinked(ctx context.Context, d digest.Digest) (hold deleting, ok bool) {
	return c.markDeleting(ctx, d, func() string {
		if c.sharedHeld(ctx, d) {
			return "linked"
		}
		return ""
	})
}

// markDeleting takes d's evicting record, then asks keep why d stays
// ("" for nothing).
func (c *Cache) markDeleting(ctx context.Context, d digest.Digest, keep func() string) (hold deleting, ok bool) {
	if c.rec == nil {
		return noRecord, true
	}
	release, start, ok := c.takeEvicting(ctx, d)
	if !ok {
		return hold, false
	}
	if !c.mayDelete(d, start, keep) {
		release()
		return hold, false
	}
	return deleting{deadline: start.Add(c.evictingFor / 2), done: func(landed bool) {
		if landed {
			release()
		}
	}}, true
}

// takeEvicting creates d's evicting record; release deletes it. start is
// when, by this replica's clock, before the write.
func (c *Cache) takeEvicting(ctx context.Context, d digest.Digest) (release func(), start time.Time, ok bool) {
	key, err := sharedEvictingKey(d)
	if err != nil {
		return nil, start, false
	}
	start = time.Now()
	b, err := json.Marshal(sharedEvicting{By: c.opts.Replica, Since: c.opts.Now()})
	if err != nil {
		return nil, start, false
	}
	if _, err := c.rec.store.Put(ctx, key, b, records.IfAbsent()); err != nil {
		if !errors.Is(err, records.ErrConflict) && ctx.Err() == nil {
			c.sharedFailed("put", key, err)
		}
		return nil, start, false // a dead leader's record: swept once stale (sweepEvicting)
	}
	if c.evictStep != nil {
		c.evictStep("taken", d)
	}
	return func() {
		if err := c.rec.store.Delete(context.WithoutCancel(ctx), key); err != nil {
			c.sharedFailed("delete", key, err) // pushers wait it out; the next sweep takes it
		}
	}, start, true
}

// removeHeld removes d with hold on its evicting record: under the
// content lock, unless the hold's deadline passed while waiting for the
// lock, and with the store's delete bounded by the deadline, so that no
// delete lands once pushers may take the record for a dead leader's. A
// delete that failed keeps the record (deleting). stray says whether a
// file the index does not know goes too (a delete's: eviction plans from
// the index, and d forgotten since is someone else's removal). It
// reports whether d went.
func (c *Cache) removeHeld(ctx context.Context, d digest.Digest, hold deleting, stray bool) (bool, error) {
	cancel := func() {}
	if !hold.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, hold.deadline)
	}
	defer cancel()
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	if !hold.deadline.IsZero() && !time.Now().Before(hold.deadline) {
		c.tooSlow(d)
		hold.done(true)
		return false, nil
	}
	sent := false
	del := func(ctx context.Context, d digest.Digest) error {
		if c.evictStep != nil {
			c.evictStep("deleting", d) // the index forgot d; the store has it yet
		}
		sent = true
		return c.store.Delete(ctx, d)
	}
	meta, err := c.index.Blob(d)
	switch {
	case errors.Is(err, index.ErrNotFound) && stray:
		err = del(ctx, d)
	case errors.Is(err, index.ErrNotFound):
		hold.done(true)
		return false, nil
	case err == nil:
		err = c.forgetLocked(ctx, d, meta.Size, del)
	}
	hold.done(err == nil || !sent)
	return err == nil, err
}

// tooSlow counts and logs an item kept because the leader could not
// delete it within the evicting record's bound.
func (c *Cache) tooSlow(d digest.Digest) {
	c.opts.Metrics.EvictSpared("slow")
	c.log.WithField("digest", d).Warn("eviction: too slow to delete within the evicting record's bound; kept")
}

// mayDelete asks keep why d stays ("" for nothing), with d's evicting
// record held since start, and refuses past half the record's bound.
func (c *Cache) mayDelete(d digest.Digest, start time.Time, keep func() string) bool {
	if why := keep(); why != "" {
		c.opts.Metrics.EvictSpared(why)
		return false
	}
	if c.evictStep != nil {
		c.evictStep("checked", d)
	}
	if time.Since(start) >= c.evictingFor/2 {
		c.tooSlow(d)
		return false
	}
	return true
}

// confirmPushed is the pusher's side, once its pinned links to ds are in
// the bucket (linkPushed has refused what the index no longer knows): it waits out any eviction of them under way and checks
// that the bucket still holds each. Content that is gone is forgotten
// here (its index entry and local copy, not the bucket's: another push
// may have put it back) and the push fails with ErrEvicted, so that the
// client's retry finds nothing and uploads it again.
func (c *Cache) confirmPushed(ctx context.Context, repo Repo, ds []digest.Digest) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sharedWriters)
	var mu sync.Mutex
	var gone []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, d := range ds {
		if seen[d] {
			continue
		}
		seen[d] = true
		g.Go(func() error {
			there, err := c.survived(gctx, repo, d)
			if err == nil && !there {
				mu.Lock()
				gone = append(gone, d)
				mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	for _, d := range gone {
		c.forgetEvicted(d)
	}
	return fmt.Errorf("%s: %v: %w", repo, gone, ErrEvicted)
}

// survived reports whether the bucket holds d once no eviction of it is
// under way.
func (c *Cache) survived(ctx context.Context, repo Repo, d digest.Digest) (bool, error) {
	key, err := sharedEvictingKey(d)
	if err != nil {
		return false, err
	}
	r, err := c.rec.store.Get(ctx, key)
	waited, stale := false, false
	switch {
	case errors.Is(err, records.ErrNotFound): // the common case: no eviction of d
	case err != nil && !errors.Is(err, records.ErrTooLarge): // one too large is aged all the same
		c.sharedFailed("get", key, err)
		return false, fmt.Errorf("shared records: %w: %w", ErrStoreUnavailable, err)
	default:
		waited = true
		if stale, err = c.awaitEvicting(ctx, repo, d, key, r); err != nil {
			return false, err
		}
	}
	_, err = c.statDurable(ctx, d)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		c.opts.Metrics.EvictHandshake("refused")
		c.log.WithFields(map[string]any{"repo": repo.String(), "digest": d}).
			Warn("eviction took content from the bucket as a push linked it; the push is refused and the client uploads it again")
		return false, nil
	default:
		if down := c.storeDown(err); down != nil {
			err = down
		}
		return false, fmt.Errorf("stat %s: %w", d, err)
	}
	switch {
	case stale:
		c.opts.Metrics.EvictHandshake("stale")
	case waited:
		c.opts.Metrics.EvictHandshake("kept")
	}
	return true, nil
}

// awaitEvicting waits, polling with a growing pause, until the evicting
// record r at key is gone, or is older than evictingBound by the store's
// clock (stale: a dead leader's). The store's clock is read off the
// push's own link record, written just before.
func (c *Cache) awaitEvicting(ctx context.Context, repo Repo, d digest.Digest, key string, r records.Record) (stale bool, err error) {
	storeNow := r.Modified // if the link cannot be read: as if the record were new
	if lk, err := sharedLinkKey(repo, d); err == nil {
		if l, err := c.rec.store.Get(ctx, lk); err == nil {
			storeNow = l.Modified
		}
	}
	at := time.Now()
	if c.evictingSeen != nil {
		c.evictingSeen(d)
	}
	pause := 10 * time.Millisecond
	for {
		left := r.Modified.Add(c.evictingFor).Sub(storeNow.Add(time.Since(at)))
		if left <= 0 {
			c.log.WithFields(map[string]any{"digest": d, "key": key}).Warn("eviction: an evicting record outlived its bound; taken for a dead leader's")
			return true, nil
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, fmt.Errorf("waiting for the eviction of %s: %w", d, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
		r, err = c.rec.store.Get(ctx, key)
		switch {
		case errors.Is(err, records.ErrNotFound):
			return false, nil
		case err != nil && !errors.Is(err, records.ErrTooLarge):
			c.sharedFailed("get", key, err)
			return false, fmt.Errorf("shared records: %w: %w", ErrStoreUnavailable, err)
		}
	}
}

// forgetEvicted drops d from this replica (its index entry, its links
// and its local copy) after the bucket lost it: nothing here may answer
// for it until it is put again.
func (c *Cache) forgetEvicted(d digest.Digest) {
	dropLocal := func(context.Context, digest.Digest) error { return nil }
	if t, ok := c.store.(interface {
		DropLocal(context.Context, digest.Digest) error
	}); ok {
		dropLocal = t.DropLocal
	}
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	meta, err := c.index.Blob(d)
	if err != nil {
		return // forgotten already
	}
	if err := c.forgetLocked(c.life, d, meta.Size, dropLocal); err != nil {
		c.log.WithError(err).WithField("digest", d).Warn("forgetting content eviction took from the bucket")
	}
}

// evictingSeen is what the leader remembers of the evicting records
// between its walks, as versionsSeen.
type evictingSeen = versionsSeen

// sweepEvicting deletes the evicting records a dead leader left: one
// seen at the same version for a whole evictingBound by this leader's
// own clock (a live leader's record lasts seconds). seen is the
// leader's, carried from walk to walk.
func (c *Cache) sweepEvicting(ctx context.Context, seen evictingSeen) {
	if c.rec == nil {
		return
	}
	var keys []string
	if err := c.rec.store.List(ctx, sharedEvictingDir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		if ctx.Err() == nil { // not the lease's end
			c.sharedFailed("list", sharedEvictingDir, err)
		}
		return
	}
	listed := map[string]bool{}
	for _, k := range keys {
		r, err := c.rec.store.Get(ctx, k)
		if err != nil && !errors.Is(err, records.ErrTooLarge) { // one too large is swept by its version all the same
			continue // gone meanwhile, or asked again at the next walk
		}
		listed[k] = true
		if seen.fresh(k, r.Version, c.evictingFor) {
			continue
		}
		if c.deleteUnchanged(ctx, k, r.Version) {
			delete(listed, k) // a record released and taken again since is a live leader's
		}
	}
	seen.keep(listed)
}

// deleteUnchanged deletes the record at key if it is still at version,
// read again just before the delete (records has no delete conditional
// on a version: this narrows the window to one round trip, it does not
// close it), and reports whether it did.
func (c *Cache) deleteUnchanged(ctx context.Context, key, version string) bool {
	if again, err := c.rec.store.Get(ctx, key); err != nil && !errors.Is(err, records.ErrTooLarge) || again.Version != version {
		return false
	}
	if err := c.rec.store.Delete(ctx, key); err != nil {
		c.sharedFailed("delete", key, err)
		return false
	}
	return true
}
