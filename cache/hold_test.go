package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestHitDoesNotWaitForRemovals: opening a stored blob takes only the
// in-use lock, never the content lock that removals hold across index
// writes and file deletes; and eviction still skips a blob being read.
func TestHitDoesNotWaitForRemovals(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	b := randomBytes(4096)
	d := digest.FromBytes(b)
	if err := c.putBytes(context.Background(), d, b); err != nil {
		t.Fatal(err)
	}
	if err := c.recordContent(d, int64(len(b)), "", nil, false); err != nil {
		t.Fatal(err)
	}

	c.contentMu.Lock() // a removal in progress
	opened := make(chan error, 1)
	go func() {
		blob, err := c.storedBlob(context.Background(), d)
		if err == nil {
			if !c.held(d) {
				t.Error("an open blob is not held against eviction")
			}
			blob.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("hit: %v", err)
		}
	case <-time.After(10 * time.Second):
		c.contentMu.Unlock()
		t.Fatal("a hit waited for the content lock")
	}
	c.contentMu.Unlock()

	blob, err := c.storedBlob(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if c.evictOne(context.Background(), d, int64(len(b))) {
		t.Fatal("evicted a blob a client is reading")
	}
	blob.Close()
	if c.held(d) {
		t.Fatal("still held after Close")
	}
	if !c.evictOne(context.Background(), d, int64(len(b))) {
		t.Fatal("could not evict a blob nobody reads")
	}
	if _, err := c.store.Stat(context.Background(), d); err == nil {
		t.Fatal("evicted blob still stored")
	}
}

// TestCloseWaitsForDetachedCalls: a revalidation running detached from its
// client ends with Close (its context is the cache's) and Close waits for
// it; one asked for after Close began never starts, so it cannot reach a
// closed index.
func TestCloseWaitsForDetachedCalls(t *testing.T) {
	c := openTest(t, t.TempDir())
	started, ended := make(chan struct{}), make(chan struct{})
	ch := c.startFlight(context.Background(), "running", func(ctx context.Context) (any, error) {
		close(started)
		<-ctx.Done() // until Close cancels the cache's context
		close(ended)
		return nil, ctx.Err()
	})
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before the detached call ended")
	}
	<-ch
	ran := false
	r := <-c.startFlight(context.Background(), "after", func(context.Context) (any, error) { ran = true; return nil, nil })
	if ran || !errors.Is(r.Err, errClosed) {
		t.Fatalf("a call after Close: ran %v, err %v; want errClosed without running", ran, r.Err)
	}
}
