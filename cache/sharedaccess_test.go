package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/records"
)

// readThrough has r read d in pushRepo as a client does (a hit: r knows
// d and links it), and returns the open blob.
func (r *evictReplica) readThrough(t *testing.T, d digest.Digest, size int64) *Blob {
	t.Helper()
	if err := r.recordContent(d, size, "", nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.linkLocal(pushRepo, d); err != nil {
		t.Fatal(err)
	}
	b, err := r.Blob(context.Background(), pushRepo, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLeaderKeepsWhatAnotherReplicaReadLately: the leader's own accesses
// make y its oldest item, but another replica read y just now (the
// leader never heard of that read but through its report): the leader
// evicts x, colder cluster-wide, and keeps y.
func TestLeaderKeepsWhatAnotherReplicaReadLately(t *testing.T) {
	bk := newBucket(t)
	var clock atomic.Int64 // a's clock, two hours back
	clock.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	// 8 KiB stored, past 95 % of 6000; down to 85 % of it frees one item.
	a := bk.replica("a:5000", Options{MaxSize: 6000, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	b := bk.replica("b:5000", Options{})
	y := a.storeBytes(t, randomBytes(4096), false)
	clock.Add(int64(time.Hour))
	x := a.storeBytes(t, randomBytes(4096), false)

	b.readThrough(t, y, 4096).Close()
	b.writeAccessReport(context.Background(), true)
	if _, n, err := a.evictShared(context.Background(), reportsSeen{}); err != nil || n != 1 {
		t.Fatalf("evicted %d items (%v), want 1", n, err)
	}
	if !bk.inBucket(y) {
		t.Error("a evicted y, which b read just now")
	}
	if bk.inBucket(x) {
		t.Error("a kept x, colder than y across the cluster")
	}
	bk.noEvictingLeft()
}

// TestLeaderKeepsWhatAnotherReplicaHoldsOpen: content a client of
// another replica holds open is kept while its report says so, and
// evicted once a later report no longer holds it.
func TestLeaderKeepsWhatAnotherReplicaHoldsOpen(t *testing.T) {
	bk := newBucket(t)
	a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
	x := a.storeBytes(t, randomBytes(4096), false)
	y := a.storeBytes(t, randomBytes(4096), false)

	open := b.readThrough(t, y, 4096)
	b.writeAccessReport(context.Background(), true)
	reports := reportsSeen{}
	if _, _, err := a.evictShared(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	if bk.inBucket(x) {
		t.Error("a kept x, which nothing holds")
	}
	if !bk.inBucket(y) {
		t.Fatal("a evicted y, which b's client holds open")
	}
	if n := testutil.ToFloat64(a.m.ClusterEvictSpared.WithLabelValues("held")); n != 1 {
		t.Errorf("spared as held = %v, want 1", n)
	}

	open.Close()
	b.writeAccessReport(context.Background(), true)
	if _, _, err := a.evictShared(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	if bk.inBucket(y) {
		t.Error("a kept y after b's client let it go")
	}
	bk.noEvictingLeft()
}

// TestReaderRacingTheLeaderIsHeldOrMisses: a reader on another replica
// that opened y from the bucket before the leader took y's evicting
// record is in that replica's next report, which the leader waits for
// before it deletes: y is kept. A reader that comes after the record was
// taken finds it and takes x for a miss (here: no upstream to fetch it
// from) instead of streaming what is being deleted.
func TestReaderRacingTheLeaderIsHeldOrMisses(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	b := bk.replica("b:5000", Options{AccessReport: time.Hour}) // reports only when told
	x := a.storeBytes(t, randomBytes(4096), false)
	y := a.storeBytes(t, randomBytes(4096), false)
	b.writeAccessReport(context.Background(), true) // live, holding nothing
	open := b.readThrough(t, y, 4096)               // from the bucket: b has no copy
	defer open.Close()

	var xErr error
	xRead := false
	a.evictStep = func(step string, d digest.Digest) {
		if step != "taken" {
			return
		}
		switch d {
		case y: // b's next report, after the record
			b.writeAccessReport(context.Background(), true)
		case x:
			xRead = true
			if err := b.recordContent(x, 4096, "", nil, false); err != nil {
				t.Error(err)
			}
			if err := b.linkLocal(pushRepo, x); err != nil {
				t.Error(err)
			}
			var bl *Blob
			if bl, xErr = b.Blob(context.Background(), pushRepo, x); xErr == nil {
				bl.Close()
			}
		}
	}
	if _, _, err := a.evictShared(context.Background(), reportsSeen{}); err != nil {
		t.Fatal(err)
	}
	if !bk.inBucket(y) {
		t.Error("a evicted y, which b's client opened before the evicting record")
	}
	if bk.inBucket(x) {
		t.Error("a kept x, which nothing held")
	}
	if !xRead {
		t.Fatal("x was never taken for eviction")
	}
	if !errors.Is(xErr, ErrUnknownUpstream) {
		t.Errorf("b's read of x while it was evicted: %v; want a miss (no upstream to fetch from)", xErr)
	}
	bk.noEvictingLeft()
}

// TestClosingReplicaReportsItsReads: a replica that closes writes its
// last report, with its reads and nothing held (its clients are gone).
func TestClosingReplicaReportsItsReads(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	b := bk.replica("b:5000", Options{AccessReport: time.Hour})
	y := a.storeBytes(t, randomBytes(4096), false)
	b.readThrough(t, y, 4096).Close()
	b.close()
	r, err := bk.shared.Records().Get(context.Background(), "access/b:5000")
	if err != nil {
		t.Fatalf("no report after Close: %v", err)
	}
	var rep sharedAccess
	if err := json.Unmarshal(r.Data, &rep); err != nil {
		t.Fatal(err)
	}
	if _, ok := rep.Read[y]; !ok || len(rep.Held) != 0 {
		t.Errorf("report %s: want y read and nothing held", r.Data)
	}
}

// TestVersionsSeenAgeByTheirOwnClock: a record is fresh while its version
// changes, and stale once one version outlived the bound by the reader's
// own clock; keys no longer listed are forgotten.
func TestVersionsSeenAgeByTheirOwnClock(t *testing.T) {
	s := versionsSeen{}
	if !s.fresh("k", "v1", time.Hour) {
		t.Error("a version seen for the first time is not fresh")
	}
	if !s.fresh("k", "v1", time.Hour) {
		t.Error("a version seen again at once is not fresh")
	}
	if s.fresh("k", "v1", 0) {
		t.Error("a version older than the bound is fresh")
	}
	if !s.fresh("k", "v2", 0) {
		t.Error("a new version is not fresh")
	}
	s.keep(map[string]bool{})
	if len(s) != 0 {
		t.Errorf("unlisted keys kept: %v", s)
	}
}

// failingReads fails reads under prefix while on is set.
type failingReads failingLists

func (f failingReads) Get(ctx context.Context, key string) (records.Record, error) {
	if f.on.Load() && strings.HasPrefix(key, f.prefix) {
		return records.Record{}, errors.New("injected: the bucket does not answer")
	}
	return f.Records.Get(ctx, key)
}

// TestLeaderEvictsNothingWhileReportsCannotBeRead: a report the leader
// cannot list or read may hold what it would delete, so the pass evicts
// nothing; once the reports can be read, it evicts what none holds.
func TestLeaderEvictsNothingWhileReportsCannotBeRead(t *testing.T) {
	for _, fault := range []string{"list", "get"} {
		t.Run(fault, func(t *testing.T) {
			bk := newBucket(t)
			var failing atomic.Bool
			bk.records = func(r Records) Records {
				f := failingLists{Records: r, prefix: sharedAccessDir, on: &failing}
				if fault == "get" {
					return failingReads(f)
				}
				return f
			}
			a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
			x := a.storeBytes(t, randomBytes(4096), false)
			y := a.storeBytes(t, randomBytes(4096), false)
			open := b.readThrough(t, y, 4096)
			defer open.Close()
			b.writeAccessReport(context.Background(), true)
			reports := reportsSeen{}

			failing.Store(true)
			if _, n, err := a.evictShared(context.Background(), reports); err == nil || n != 0 {
				t.Errorf("evicted %d items with the reports unread (%v)", n, err)
			}
			if !bk.inBucket(x) || !bk.inBucket(y) {
				t.Fatal("a evicted with the reports unread")
			}
			failing.Store(false)
			if _, _, err := a.evictShared(context.Background(), reports); err != nil {
				t.Fatal(err)
			}
			if bk.inBucket(x) || !bk.inBucket(y) {
				t.Errorf("with the reports read: x in the bucket %v (want false), y %v (want true)", bk.inBucket(x), bk.inBucket(y))
			}
			bk.noEvictingLeft()
		})
	}
}

// TestOversizedReportKeepsEveryHold: a report too large for a record
// drops reads, never holds: a hold left out would let the leader delete
// what a client reads.
func TestOversizedReportKeepsEveryHold(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	const holds = 8000
	for i := range holds {
		c.hold(digest.FromString(fmt.Sprint("held", i)))
	}
	for i := range accessReportMax {
		c.access.recent.Add(digest.FromString(fmt.Sprint("read", i)), time.Now())
	}
	b, err := c.accessReport(true)
	if err != nil {
		t.Fatal(err)
	}
	var rep sharedAccess
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Held) != holds {
		t.Errorf("the report holds %d digests, want %d", len(rep.Held), holds)
	}
	if len(rep.Read) == 0 || len(rep.Read) == accessReportMax {
		t.Errorf("the report lists %d reads: want some cut, not all", len(rep.Read))
	}
}

// TestNewReplicaIsWaitedFor: a replica reports once as it opens, before
// it serves, and a leader whose last merge predates it waits for its
// next report all the same.
func TestNewReplicaIsWaitedFor(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	reports := reportsSeen{}
	if err := a.mergeAccessReports(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	b := bk.replica("b:5000", Options{AccessReport: time.Hour}) // no tick within the test
	key, err := sharedAccessKey(b.opts.Replica)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(bk.keys(sharedAccessDir), key) {
		t.Fatal("b opened without reporting")
	}
	live, err := a.liveReports(context.Background(), reports)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := live[key]; !ok {
		t.Errorf("the leader would not wait for b's report: %v", live)
	}
}

// TestLeaderDeletesReportsLongUnchanged: the report of a replica gone
// for good (names change across restarts) is deleted once the leader
// has seen it unchanged for accessReportGone intervals; a live one
// stays.
func TestLeaderDeletesReportsLongUnchanged(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{AccessReport: time.Second}) // the margin below: one interval
	b := bk.replica("b:5000", Options{})
	b.close() // its last report stays behind
	key, err := sharedAccessKey(b.opts.Replica)
	if err != nil {
		t.Fatal(err)
	}
	reports := reportsSeen{}
	if err := a.mergeAccessReports(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	seen := reports[key]
	seen.at = seen.at.Add(-time.Duration(accessReportGone-1) * a.opts.AccessReport)
	reports[key] = seen
	if err := a.mergeAccessReports(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(bk.keys(sharedAccessDir), key) {
		t.Fatal("the leader deleted a report before accessReportGone intervals")
	}
	seen.at = seen.at.Add(-a.opts.AccessReport)
	reports[key] = seen
	if err := a.mergeAccessReports(context.Background(), reports); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(bk.keys(sharedAccessDir), key) {
		t.Error("the leader kept a report unchanged for accessReportGone intervals")
	}
	self, _ := sharedAccessKey(a.opts.Replica)
	if !slices.Contains(bk.keys(sharedAccessDir), self) {
		t.Error("the leader's own report went")
	}
}
