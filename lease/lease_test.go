package lease_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/lease"
)

var shared s3test.Shared

func TestMain(m *testing.M) { shared.Main(m) }

const ttl = 3 * time.Second

// bucket opens a new bucket's records on the shared MinIO.
func bucket(t *testing.T) (records.Store, *s3test.Server) {
	srv := shared.Get(t)
	return s3test.OpenStore(t, srv).Records(), srv
}

// jobs records what the replicas' jobs do: how many run at once (never
// more than one), and an event for each start and end.
type jobs struct {
	running, most atomic.Int32
	events        chan string
}

func newJobs() *jobs { return &jobs{events: make(chan string, 100)} }

func (j *jobs) job(name string) func(context.Context) {
	return func(ctx context.Context) {
		n := j.running.Add(1)
		for m := j.most.Load(); n > m && !j.most.CompareAndSwap(m, n); m = j.most.Load() {
		}
		j.events <- name + " start"
		<-ctx.Done()
		j.running.Add(-1)
		j.events <- name + " end"
	}
}

func (j *jobs) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case e := <-j.events:
		return e
	case <-time.After(within):
		t.Fatalf("no job started or ended within %v", within)
		return ""
	}
}

func run(t *testing.T, r records.Store, holder string, j *jobs) *lease.Lease {
	t.Helper()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	l, err := lease.Run(lease.Options{Records: r, Name: "evict", Holder: holder, TTL: ttl, Logger: quiet}, j.job(holder))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// One holder at a time; closing it hands the lease over at once, without
// waiting out a TTL.
func TestOneHolderAndHandOver(t *testing.T) {
	r, _ := bucket(t)
	j := newJobs()
	a := run(t, r, "a", j)
	if e := j.next(t, 5*time.Second); e != "a start" {
		t.Fatalf("first event %q, want a start", e)
	}
	b := run(t, r, "b", j)
	defer b.Close()
	// b waits for as long as a renews: two TTLs without a start of b's.
	select {
	case e := <-j.events:
		t.Fatalf("while a holds the lease: %q", e)
	case <-time.After(2 * ttl):
	}
	if !a.Held() || b.Held() {
		t.Fatalf("Held: a %v, b %v; want a only", a.Held(), b.Held())
	}
	closed := time.Now()
	a.Close()
	if e := j.next(t, ttl); e != "a end" {
		t.Fatalf("after a.Close: %q, want a end", e)
	}
	if e := j.next(t, 5*time.Second); e != "b start" {
		t.Fatalf("then %q, want b start", e)
	}
	// Handed over, not expired: b's poll (TTL/3) finds the lease gone.
	if waited := time.Since(closed); waited >= ttl {
		t.Errorf("b took the lease %v after a gave it up; want less than a TTL (%v)", waited, ttl)
	}
	if m := j.most.Load(); m != 1 {
		t.Errorf("%d jobs ran at once", m)
	}
}

// failing is the store as a holder cut off from it sees it: every call
// fails once cut is set. The other replica reaches the store as usual.
type failing struct {
	records.Store
	cut atomic.Bool
}

var errCut = errors.New("cut off from the store")

func (f *failing) Get(ctx context.Context, key string) (records.Record, error) {
	if f.cut.Load() {
		return records.Record{}, errCut
	}
	return f.Store.Get(ctx, key)
}

func (f *failing) Put(ctx context.Context, key string, data []byte, c records.Cond) (string, error) {
	if f.cut.Load() {
		return "", errCut
	}
	return f.Store.Put(ctx, key, data, c)
}

func (f *failing) Delete(ctx context.Context, key string) error {
	if f.cut.Load() {
		return errCut
	}
	return f.Store.Delete(ctx, key)
}

// A holder that can no longer renew stops its job before anyone else can
// take the lease, and another replica takes it one TTL after the last
// renewal it saw.
func TestCutOffHolderStopsBeforeTakeover(t *testing.T) {
	r, _ := bucket(t)
	j := newJobs()
	fa := &failing{Store: r}
	a := run(t, fa, "a", j)
	defer a.Close()
	if e := j.next(t, 5*time.Second); e != "a start" {
		t.Fatalf("first event %q, want a start", e)
	}
	b := run(t, r, "b", j)
	defer b.Close()
	fa.cut.Store(true)
	cut := time.Now()
	if e := j.next(t, ttl); e != "a end" {
		t.Fatalf("after the cut: %q, want a end (within TTL/2 of its last renewal)", e)
	}
	if e := j.next(t, 5*time.Second); e != "b start" {
		t.Fatalf("then %q, want b start", e)
	}
	if waited := time.Since(cut); waited < ttl-ttl/3 {
		t.Errorf("b took the lease %v after a was cut off; a renewal is at most TTL/3 old, so not before %v", waited, ttl-ttl/3)
	}
	if m := j.most.Load(); m != 1 {
		t.Errorf("%d jobs ran at once", m)
	}
}

// A store that freezes (a renewal that hangs) stops the job within half a
// TTL all the same.
func TestFrozenStoreStopsTheJob(t *testing.T) {
	r, srv := bucket(t)
	j := newJobs()
	a := run(t, r, "a", j)
	defer a.Close()
	if e := j.next(t, 5*time.Second); e != "a start" {
		t.Fatalf("first event %q, want a start", e)
	}
	srv.Freeze(t)
	defer srv.Thaw()
	if e := j.next(t, ttl); e != "a end" {
		t.Fatalf("with the store frozen: %q, want a end", e)
	}
	if a.Held() {
		t.Error("Held with the store frozen")
	}
}

// Many replicas starting at once: one job at a time, over several
// hand-overs.
func TestManyReplicasOneJob(t *testing.T) {
	r, _ := bucket(t)
	j := newJobs()
	ls := map[string]*lease.Lease{}
	for i := range 5 {
		name := fmt.Sprint("r", i)
		ls[name] = run(t, r, name, j)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 3 {
		e := j.next(t, 5*time.Second)
		holder, ok := strings.CutSuffix(e, " start")
		if !ok || ls[holder] == nil {
			t.Fatalf("event %q, want a start of a running replica", e)
		}
		ls[holder].Close()
		delete(ls, holder)
		if e := j.next(t, ttl); e != holder+" end" {
			t.Fatalf("after closing %s: %q", holder, e)
		}
	}
	if m := j.most.Load(); m != 1 {
		t.Errorf("%d jobs ran at once", m)
	}
}
