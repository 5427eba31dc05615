package tier_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/storetest"
	"github.com/wharf-mirror/wharf/cache/tier"
)

// The tier is a cache.Store.
var _ cache.Store = (*tier.Store)(nil)

// TestConformance runs the table with a disk store in another directory as
// the shared tier. Every reopen opens both tiers again, as a restarted
// replica would.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		localDir, sharedDir := t.TempDir(), t.TempDir()
		return func(t *testing.T) cache.Store {
			return newTier(t, openDisk(t, localDir), openDisk(t, sharedDir), tier.Options{})
		}
	})
}

// TestPutWritesSharedFirst: when the shared tier is asked to store, the
// local tier does not have the content yet, so nothing is served locally
// that a lost replica would take with it.
func TestPutWritesSharedFirst(t *testing.T) {
	r := newRig(t, tier.Options{})
	b, d := content(t, 4096)
	asked := false
	r.shared.put = func(_ *os.File, pd digest.Digest) error {
		asked = true
		if has(t, r.local, pd) {
			t.Error("the local tier holds the content before the shared tier was asked")
		}
		return nil
	}
	putIn(t, r, b, d)
	if !asked || !has(t, r.local, d) || !has(t, r.shared, d) {
		t.Errorf("after Put: shared asked %t, local %t, shared %t; want all", asked, has(t, r.local, d), has(t, r.shared, d))
	}
}

// TestFailedSharedPutKeepsNothing: a Put the shared tier refuses is not
// acknowledged and leaves no copy, local or shared; the staged file is
// left to the caller, as cache.Store says, and no link beside it.
func TestFailedSharedPutKeepsNothing(t *testing.T) {
	r := newRig(t, tier.Options{})
	b, d := content(t, 4096)
	down := errors.New("shared tier down")
	r.shared.put = func(*os.File, digest.Digest) error { return down }
	f, _ := r.TempFile()
	defer f.Close()
	f.Write(b)
	if err := r.Put(ctx, f, d, int64(len(b))); !errors.Is(err, down) {
		t.Fatalf("Put: %v; want the shared tier's error", err)
	}
	if has(t, r.local, d) || has(t, r.shared, d) || has(t, r, d) {
		t.Error("content visible after a failed Put")
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Name()))
	if len(entries) != 1 || entries[0].Name() != filepath.Base(f.Name()) {
		t.Errorf("staging directory holds %v; want the staged file alone", entries)
	}
}

// TestPutLeavesTheStagedDescriptorAlone: the shared store reads the
// staged bytes through a descriptor of its own, so the caller's offset is
// where the caller left it, whatever the shared store does with its own.
func TestPutLeavesTheStagedDescriptorAlone(t *testing.T) {
	r := newRig(t, tier.Options{})
	b, d := content(t, 4096)
	r.shared.put = func(f *os.File, _ digest.Digest) error {
		_, err := io.Copy(io.Discard, f) // a store that reads with Read
		return err
	}
	f, _ := r.TempFile()
	defer f.Close()
	f.Write(b)
	f.Seek(100, io.SeekStart)
	if err := r.Put(ctx, f, d, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 100 {
		t.Errorf("staged file's offset after Put: %d, want 100", off)
	}
}

// TestHitIsAnOSFile: a local hit is the disk store's *os.File, which
// http.ServeContent sends with sendfile.
func TestHitIsAnOSFile(t *testing.T) {
	r := newRig(t, tier.Options{})
	b, d := content(t, 1000)
	putIn(t, r, b, d)
	c, err := r.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*os.File); !ok {
		t.Errorf("Open returned a %T, want *os.File", c)
	}
	if hits := testutil.ToFloat64(r.m.TierLocalHits); hits != 1 {
		t.Errorf("local hits: %v, want 1", hits)
	}
}

// TestWalkListsTheSharedTier: the shared tier is the truth; a local copy
// of content it no longer holds is not listed.
func TestWalkListsTheSharedTier(t *testing.T) {
	r := newRig(t, tier.Options{})
	b1, d1 := content(t, 100)
	b2, d2 := content(t, 100)
	putIn(t, r, b1, d1)
	putIn(t, r, b2, d2)
	r.shared.Delete(ctx, d2) // another replica's eviction
	var walked []digest.Digest
	if err := r.Walk(ctx, func(d digest.Digest, _ int64) error { walked = append(walked, d); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != d1 {
		t.Errorf("Walk: %v, want [%s]", walked, d1)
	}
}

// TestDeleteGoesSharedFirst: a Delete the shared tier refuses leaves the
// content whole, local copy included.
func TestDeleteGoesSharedFirst(t *testing.T) {
	r := newRig(t, tier.Options{})
	b, d := content(t, 100)
	putIn(t, r, b, d)
	r.shared.del = errors.New("shared tier down")
	if err := r.Delete(ctx, d); !errors.Is(err, r.shared.del) {
		t.Fatalf("Delete: %v; want the shared tier's error", err)
	}
	if !has(t, r.local, d) || !has(t, r.shared, d) {
		t.Errorf("after a refused Delete: local %t, shared %t; want both", has(t, r.local, d), has(t, r.shared, d))
	}
	r.shared.del = nil
	if err := r.Delete(ctx, d); err != nil || has(t, r.local, d) || has(t, r.shared, d) {
		t.Errorf("Delete: %v; local %t, shared %t; want gone from both", err, has(t, r.local, d), has(t, r.shared, d))
	}
}

// TestGateTurnsASharedReadIntoAMiss: with a gate set, a miss asks it
// before it reads the shared tier, and its refusal fails the Open with
// the shared tier unread and nothing promoted; the refused copy that the
// local tier holds is served without asking.
func TestGateTurnsASharedReadIntoAMiss(t *testing.T) {
	r := newRig(t, tier.Options{})
	refused := errors.New("being evicted")
	asked := 0
	r.GateShared(func(_ context.Context, d digest.Digest) error {
		asked++
		return refused
	})
	b, d := content(t, 100)
	putIn(t, r.shared, b, d)
	if _, err := r.Open(ctx, d); !errors.Is(err, refused) {
		t.Fatalf("Open of a gated miss: %v, want the gate's error", err)
	}
	if asked != 1 || r.shared.openCount() != 0 {
		t.Errorf("gate asked %d times, shared tier opened %d times; want 1 and 0", asked, r.shared.openCount())
	}
	putIn(t, r.local, b, d)
	c, err := r.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open of a local copy: %v", err)
	}
	c.Close()
	if asked != 1 {
		t.Error("a local hit asked the gate")
	}
}
