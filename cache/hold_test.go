package cache

import (
	"context"
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
	if c.evictOne(d, int64(len(b))) {
		t.Fatal("evicted a blob a client is reading")
	}
	blob.Close()
	if c.held(d) {
		t.Fatal("still held after Close")
	}
	if !c.evictOne(d, int64(len(b))) {
		t.Fatal("could not evict a blob nobody reads")
	}
	if _, err := c.store.Stat(context.Background(), d); err == nil {
		t.Fatal("evicted blob still stored")
	}
}
