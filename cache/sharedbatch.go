package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/evict"
	"github.com/wharf-mirror/wharf/cache/records"
)

// A reader on another replica that starts just as the leader deletes
// would lose the object mid-read: its hold is in its memory, and reaches
// the leader only with its next report. So the leader evicts in batches,
// and pairs its evicting records with the readers' reports as pushes pair
// them with links (sharedevicting.go):
//
//	leader                                   reader on a local miss (cache/tier)
//	1. take the evicting records of a batch  1. hold d (in memory; its reports say so)
//	2. wait for every live replica to        2. get evicting/<d>: present → a miss
//	   report again (at most                    (fetched through a peer or the
//	   accessReportLive intervals)              upstream), absent → read the bucket
//	3. merge the reports, plan again, and
//	   delete what is still cold and unheld
//
// If the reader's get missed the record, its hold came before the
// record, so the report the leader waits for lists it (if it still
// holds d). A replica that does not report within the bound is taken
// for gone, with its readers. Content pinned here is read whatever the
// record says: the leader keeps what any pinned link names.

// evictTaken is an evicting record a batch holds.
type evictTaken struct {
	start   time.Time
	release func()
}

// takeBatch takes the evicting records of what plan would evict to free
// need bytes (plan is spent), waits for the replicas to report again,
// and merges their reports; the caller plans afresh and evicts, and then
// calls the returned release. Without reports there is nothing to wait
// for, and items are taken one at a time. A report that cannot be read
// fails the batch: its records are released, and nothing is evicted.
func (c *Cache) takeBatch(ctx context.Context, plan *evict.Plan, need int64, reports reportsSeen) (release func(), err error) {
	if !c.reportsAccess() {
		return func() {}, nil
	}
	batch := map[digest.Digest]evictTaken{}
	var gone int64
	plan.Evict(
		func() bool { return gone >= need || ctx.Err() != nil },
		func(it evict.Item) bool {
			// Asked first to take no record for what stays anyway, and
			// again once the record is taken.
			switch {
			case c.held(it.Digest) || c.heldElsewhere(it.Digest):
				c.opts.Metrics.EvictSpared("held")
				return false
			case c.sharedPinned(ctx, it.Digest):
				c.opts.Metrics.EvictSpared("pinned")
				return false
			}
			rel, start, ok := c.takeEvicting(ctx, it.Digest)
			if !ok {
				return false
			}
			batch[it.Digest] = evictTaken{start: start, release: rel}
			gone += it.Size
			return true
		},
	)
	c.evictBatch = batch
	release = func() {
		for _, t := range batch {
			t.release()
		}
		c.evictBatch = nil
	}
	if len(batch) > 0 {
		live, err := c.liveReports(ctx, reports)
		if err == nil {
			err = c.awaitReports(ctx, live)
		}
		if err == nil {
			err = c.mergeAccessReports(ctx, reports)
		}
		if err != nil {
			release()
			return func() {}, err
		}
	}
	return release, nil
}

// liveReports reads the current version of every other replica's report
// that was live at the last merge, or is new since: listed after the
// batch's records were taken, so that a replica started since (its first
// report is written before it serves) is waited for too. A listing or
// report that cannot be read fails it.
func (c *Cache) liveReports(ctx context.Context, reports reportsSeen) (map[string]string, error) {
	live := time.Duration(accessReportLive) * c.opts.AccessReport
	self, _ := sharedAccessKey(c.opts.Replica)
	var keys []string
	if err := c.rec.store.List(ctx, sharedAccessDir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		c.sharedFailed("list", sharedAccessDir, err)
		return nil, fmt.Errorf("list the access reports: %w", err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if seen, ok := reports[k]; k == self || ok && time.Since(seen.at) >= live {
			continue
		}
		r, err := c.rec.store.Get(ctx, k)
		switch {
		case errors.Is(err, records.ErrNotFound): // gone with its replica
		case err != nil && !errors.Is(err, records.ErrTooLarge): // one too large has its version
			c.sharedFailed("get", k, err)
			return nil, fmt.Errorf("read the access report %s: %w", k, err)
		default:
			out[k] = r.Version
		}
	}
	return out, nil
}

// awaitReports waits until each report in versions was rewritten, for at
// most accessReportLive intervals: a replica that does not report by
// then is taken for gone. A report that cannot be read fails it.
func (c *Cache) awaitReports(ctx context.Context, versions map[string]string) error {
	deadline := time.Now().Add(time.Duration(accessReportLive) * c.opts.AccessReport)
	pause := min(c.opts.AccessReport/4, time.Second)
	for len(versions) > 0 && time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the access reports: %w", ctx.Err())
		case <-t.C:
		}
		for k, v := range versions {
			r, err := c.rec.store.Get(ctx, k)
			tooLarge := errors.Is(err, records.ErrTooLarge) // its version says all the same
			switch {
			case errors.Is(err, records.ErrNotFound), (err == nil || tooLarge) && r.Version != v:
				delete(versions, k) // gone with its replica, or rewritten
			case err != nil && !tooLarge:
				c.sharedFailed("get", k, err)
				return fmt.Errorf("read the access report %s: %w", k, err)
			}
		}
	}
	if len(versions) > 0 {
		c.log.WithField("replicas", len(versions)).Warn("eviction: replicas did not report within the bound; their readers are taken for gone")
	}
	return nil
}

// sharedReadGate is asked by the tier before it reads d from the bucket
// on a local miss (with d held by the reader): an eviction of d under
// way makes it a miss (errEvicting), fetched elsewhere, unless d is
// pinned here. A
// bucket that cannot say lets the read go on, as before the gate.
func (c *Cache) sharedReadGate(ctx context.Context, d digest.Digest) error {
	key, err := sharedEvictingKey(d)
	if err != nil || c.Pinned(d) {
		return nil
	}
	ctx, cancel := c.readCtx(ctx)
	defer cancel()
	if _, err := c.rec.store.Get(ctx, key); err != nil && !errors.Is(err, records.ErrTooLarge) { // one too large is there
		if !errors.Is(err, records.ErrNotFound) {
			c.sharedFailed("get", key, err)
		}
		return nil
	}
	return fmt.Errorf("%s: %w", d, errEvicting)
}

// errEvicting is the gate's refusal: a miss to every reader (any error
// of a stored read is), but not fs.ErrNotExist, which would make a
// reader drop the content (storedManifest), and with it the bucket's
// copy that the leader may yet keep.
var errEvicting = errors.New("being evicted from the shared store")
