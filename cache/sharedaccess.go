package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
)

// What the replica leading eviction knows of the others' readers. Its
// LRU sees only its own reads, and a replica serving a hot image from its
// local tier never touches the bucket, so without reports the leader
// would evict what is hot elsewhere. Each replica writes, every
// AccessReport and when it closes, the record access/<replica>: its most
// recent reads (at most accessReportMax), each with its age by the
// replica's own clock, and the digests its clients hold open right now.
// The leader, before it plans, reads every report and takes a read's
// time as the record's Modified (the store's clock) less its age, so no
// two replicas' clocks are compared; a read newer than the leader's own
// record of the digest becomes its last use. Digests held open in a live
// report (one whose version changed within accessReportLive by the
// leader's own clock) are kept like its own readers'.

const (
	// accessReportMax bounds the reads a report lists (about 85 bytes
	// each, well within records.MaxSize).
	accessReportMax = 8192
	// accessReportLive is how many report intervals a report's held
	// digests count for when the report has not changed: a replica that
	// stopped reporting has died or lost the bucket, and its readers
	// with it.
	accessReportLive = 3
	// accessReportGone is how many report intervals a report must stay
	// unchanged before the leader deletes it: replica names change
	// across restarts, and their reports would pile up.
	accessReportGone = 10 * accessReportLive
)

// sharedAccess is a replica's report.
type sharedAccess struct {
	// Read maps each recently read digest to how long before the report
	// was written it was last read, in milliseconds.
	Read map[digest.Digest]int64 `json:"read"`
	Held []digest.Digest         `json:"held,omitempty"`
}

// reportsAccess reports whether this cache writes access reports: it
// shares records and has a name among the replicas.
func (c *Cache) reportsAccess() bool { return c.rec != nil && c.opts.Replica != "" }

// reportAccess writes the report every AccessReport until stop, and once
// more then, holding nothing (the replica is closing). Cache.bg owns it.
func (c *Cache) reportAccess(stop <-chan struct{}) {
	defer c.bg.Done()
	t := time.NewTicker(c.opts.AccessReport)
	defer t.Stop()
	for {
		select {
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.writeAccessReport(ctx, false)
			return
		case <-t.C:
			c.writeAccessReport(c.life, true)
		}
	}
}

// writeAccessReport writes this replica's report; a failure is counted
// and logged (the leader then plans on older reports). Writes take turns
// from reading the holds to the Put's answer: a report read before a
// client let go, and sent slowly, must not land after one read since.
func (c *Cache) writeAccessReport(ctx context.Context, holding bool) {
	key, err := sharedAccessKey(c.opts.Replica)
	if err != nil {
		return
	}
	c.reportMu.Lock()
	defer c.reportMu.Unlock()
	b, err := c.accessReport(holding)
	if err != nil {
		c.log.WithError(err).Warn("shared records: the access report")
		return
	}
	if _, err := c.rec.store.Put(ctx, key, b, records.Always()); err != nil && ctx.Err() == nil {
		c.sharedFailed("put", key, err)
	}
}

// accessReport encodes the most recent reads and, if holding, what
// clients hold open, within records.MaxSize.
func (c *Cache) accessReport(holding bool) ([]byte, error) {
	now := time.Now()
	keys := c.access.recent.Keys() // oldest first
	var held []digest.Digest
	if holding {
		c.inUseMu.Lock()
		for d := range c.inUse {
			held = append(held, d)
		}
		c.inUseMu.Unlock()
		slices.Sort(held)
	}
	for n := accessReportMax; ; n /= 2 {
		// Only the reads are cut: a hold left out would let the
		// leader delete what a client reads.
		rep := sharedAccess{Read: map[digest.Digest]int64{}, Held: held}
		for _, d := range keys[max(0, len(keys)-n):] {
			if at, ok := c.access.recent.Peek(d); ok {
				rep.Read[d] = max(0, now.Sub(at).Milliseconds())
			}
		}
		b, err := json.Marshal(rep)
		if err != nil || len(b) <= records.MaxSize {
			return b, err
		}
		if n == 0 {
			return nil, errors.New("the held digests alone do not fit a record")
		}
	}
}

// reportsSeen is what the leader remembers of the reports between its
// walks, as versionsSeen.
type reportsSeen = versionsSeen

// mergeAccessReports reads the other replicas' reports into this
// leader's view before it plans: reads newer than its own record of a
// digest it knows become the digest's last use, and what a live report
// holds is kept (heldElsewhere). It fails closed: a listing or a report
// it cannot read, or a live report it cannot decode, is an error, and
// the leader evicts nothing on a view that may miss a reader's holds.
// Only a report gone (ErrNotFound) went with its replica.
func (c *Cache) mergeAccessReports(ctx context.Context, seen reportsSeen) error {
	if !c.reportsAccess() {
		return nil
	}
	self, _ := sharedAccessKey(c.opts.Replica)
	var keys []string
	if err := c.rec.store.List(ctx, sharedAccessDir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		if ctx.Err() == nil { // not the lease's end
			c.sharedFailed("list", sharedAccessDir, err)
		}
		return fmt.Errorf("list the access reports: %w", err)
	}
	c.flushAccess() // this replica's own reads first: a later flush would undo newer ones
	own, err := c.index.Accesses()
	if err != nil {
		c.opts.Metrics.StoreError("index")
		return fmt.Errorf("read access times: %w", err)
	}
	newer := map[digest.Digest]time.Time{}
	held := map[digest.Digest]bool{}
	live := time.Duration(accessReportLive) * c.opts.AccessReport
	listed := map[string]bool{}
	for _, k := range keys {
		if k == self {
			continue
		}
		r, err := c.rec.store.Get(ctx, k)
		switch {
		case errors.Is(err, records.ErrNotFound):
			continue // gone with its replica
		case err != nil && !errors.Is(err, records.ErrTooLarge): // the bucket's failure, not the record's
			if ctx.Err() == nil {
				c.sharedFailed("get", k, err)
			}
			return fmt.Errorf("read the access report %s: %w", k, err)
		}
		listed[k] = true
		fresh := seen.fresh(k, r.Version, live)
		if !seen.fresh(k, r.Version, time.Duration(accessReportGone)*c.opts.AccessReport) && c.deleteUnchanged(ctx, k, r.Version) {
			delete(listed, k)
			continue
		}
		var rep sharedAccess
		if err == nil {
			err = json.Unmarshal(r.Data, &rep)
		}
		if err != nil {
			if fresh {
				return fmt.Errorf("access report %s: %w", k, err)
			}
			continue // a dead replica's: its holds count no more
		}
		for d, ms := range rep.Read {
			at := r.Modified.Add(-time.Duration(ms) * time.Millisecond)
			if at.After(own[d]) && at.After(newer[d]) && c.knows(d) {
				newer[d] = at
			}
		}
		if fresh {
			for _, d := range rep.Held {
				held[d] = true
			}
		}
	}
	seen.keep(listed)
	if len(newer) > 0 {
		if err := c.index.PutAccess(newer); err != nil {
			c.opts.Metrics.StoreError("index")
			c.log.WithError(err).Warn("eviction: writing the other replicas' access times")
		}
	}
	c.othersHeld.Store(&held)
	return nil
}

// knows reports whether the index records content d.
func (c *Cache) knows(d digest.Digest) bool {
	_, err := c.index.Blob(d)
	return err == nil
}

// heldElsewhere reports whether a live report of another replica said
// its clients hold d open, as of the leader's last merge.
func (c *Cache) heldElsewhere(d digest.Digest) bool {
	held := c.othersHeld.Load()
	return held != nil && (*held)[d]
}

// versionsSeen remembers records a leader found at its walks, by key:
// the version and when this leader first saw it, by its own clock (the
// rule of the leases: a record that keeps its version for long enough
// was left by a replica that stopped).
type versionsSeen map[string]struct {
	version string
	at      time.Time
}

// fresh notes version at key and reports whether it is new or was first
// seen less than bound ago.
func (s versionsSeen) fresh(key, version string, bound time.Duration) bool {
	prev, ok := s[key]
	if !ok || prev.version != version {
		s[key] = struct {
			version string
			at      time.Time
		}{version, time.Now()}
		return true
	}
	return time.Since(prev.at) < bound
}

// keep forgets the keys not in listed.
func (s versionsSeen) keep(listed map[string]bool) {
	for k := range s {
		if !listed[k] {
			delete(s, k)
		}
	}
}
