package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/cache/s3"
)

// records.Store is what the cache and the leases consume.
var _ records.Store = s3.Records{}

func openRecords(t *testing.T) (records.Store, *s3.Store) {
	srv := shared.Get(t)
	st := open(t, options(srv, srv.Bucket(t)))
	return st.Records(), st
}

func TestRecordsReadWhatWasWritten(t *testing.T) {
	r, _ := openRecords(t)
	if _, err := r.Get(ctx, "tags/a"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("Get of a missing record: %v, want ErrNotFound", err)
	}
	v1, err := r.Put(ctx, "tags/a", []byte("one"), records.Always())
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Get(ctx, "tags/a")
	if err != nil || string(got.Data) != "one" || got.Version != v1 || got.Modified.IsZero() {
		t.Fatalf("Get = %q version %q modified %v, %v; want \"one\" version %q", got.Data, got.Version, got.Modified, err, v1)
	}
	if err := r.Delete(ctx, "tags/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "tags/a"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := r.Delete(ctx, "tags/a"); err != nil {
		t.Fatalf("Delete of a missing record: %v", err)
	}
}

// The conditions are the store's own: a create loses to an existing
// record, a replace loses to a writer that replaced the version it read.
func TestRecordsConditionalWrites(t *testing.T) {
	r, _ := openRecords(t)
	v1, err := r.Put(ctx, "lease/evict", []byte("a"), records.IfAbsent())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := r.Put(ctx, "lease/evict", []byte("b"), records.IfAbsent()); !errors.Is(err, records.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	v2, err := r.Put(ctx, "lease/evict", []byte("c"), records.IfMatch(v1))
	if err != nil {
		t.Fatalf("replace at the version read: %v", err)
	}
	if _, err := r.Put(ctx, "lease/evict", []byte("d"), records.IfMatch(v1)); !errors.Is(err, records.ErrConflict) {
		t.Fatalf("replace at a stale version: %v, want ErrConflict", err)
	}
	if _, err := r.Put(ctx, "lease/other", []byte("e"), records.IfMatch(v2)); !errors.Is(err, records.ErrConflict) && !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("replace of a missing record: %v, want ErrConflict or ErrNotFound", err)
	}
	got, err := r.Get(ctx, "lease/evict")
	if err != nil || string(got.Data) != "c" || got.Version != v2 {
		t.Fatalf("after the lost writes: %q version %q, %v; want \"c\" version %q", got.Data, got.Version, err, v2)
	}
}

// Of writers racing to create one key, exactly one wins: what a lease is
// built on.
func TestRecordsCreateRaceHasOneWinner(t *testing.T) {
	r, _ := openRecords(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.Put(ctx, "lease/race", []byte(fmt.Sprint(i)), records.IfAbsent())
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both created the record", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, records.ErrConflict):
			t.Fatalf("writer %d: %v, want ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer created the record")
	}
	got, err := r.Get(ctx, "lease/race")
	if err != nil || string(got.Data) != fmt.Sprint(won) {
		t.Fatalf("record holds %q, %v; want the winner's %d", got.Data, err, won)
	}
}

func TestRecordsList(t *testing.T) {
	r, st := openRecords(t)
	for _, k := range []string{"tags/docker.io/a/1", "tags/docker.io/a/2", "tags/docker.io/ab/1", "links/x"} {
		if _, err := r.Put(ctx, k, []byte("x"), records.Always()); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) []string {
		var keys []string
		if err := r.List(ctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		return keys
	}
	if got := strings.Join(list("tags/docker.io/a/"), " "); got != "tags/docker.io/a/1 tags/docker.io/a/2" {
		t.Errorf("List(tags/docker.io/a/) = %s", got)
	}
	if got := len(list("")); got != 4 {
		t.Errorf("List(\"\") found %d records, want 4", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := r.List(ctx, "", func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("List stopped by fn: %v after %d calls, want stop after 1", err, n)
	}
	// Records are not content: the content walk does not see them.
	if err := st.Walk(ctx, func(d digest.Digest, _ int64) error { return fmt.Errorf("content walk found %s", d) }); err != nil {
		t.Error(err)
	}
}

func TestRecordsRefuseBadKeysAndSizes(t *testing.T) {
	r, _ := openRecords(t)
	for _, k := range []string{"", "/abs", "a//b", "a/../../blobs/x", "a/./b", "tag with space", "a\x00b", "é"} {
		if _, err := r.Put(ctx, k, []byte("x"), records.Always()); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
		if _, err := r.Get(ctx, k); err == nil || errors.Is(err, records.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want a key error", k, err)
		}
	}
	if _, err := r.Put(ctx, "big", bytes.Repeat([]byte("x"), records.MaxSize+1), records.Always()); err == nil {
		t.Error("Put of a record over MaxSize succeeded")
	}
}

// A read racing writers of the same record gets one whole version or
// another, never an error: the GET is one request.
func TestRecordsReadWhileReplaced(t *testing.T) {
	r, _ := openRecords(t)
	if _, err := r.Put(ctx, "tags/moving", []byte("0"), records.Always()); err != nil {
		t.Fatal(err)
	}
	const n = 50
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := r.Put(ctx, "tags/moving", []byte(fmt.Sprint(i)), records.Always()); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range n {
		got, err := r.Get(ctx, "tags/moving")
		if err != nil {
			t.Fatalf("Get while the record is replaced: %v", err)
		}
		if len(got.Data) == 0 || got.Version == "" {
			t.Fatalf("Get = %q version %q", got.Data, got.Version)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
