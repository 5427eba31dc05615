package tier_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/tier"
)

// TestLocalCapEvictsLeastRecentlyOpened: past LocalMaxSize the local
// copies least recently opened go, down to the low mark; their shared
// copies stay and are still served.
func TestLocalCapEvictsLeastRecentlyOpened(t *testing.T) {
	r := newRig(t, tier.Options{LocalMaxSize: 3000, LocalLowSize: 2000})
	var blobs [][]byte
	var ds []digest.Digest
	for range 3 {
		b, d := content(t, 1000)
		putIn(t, r, b, d)
		blobs, ds = append(blobs, b), append(ds, d)
	}
	read(t, r.Store, ds[0]) // the oldest put is now the latest opened
	b, d := content(t, 1000)
	putIn(t, r, b, d) // 4000 > 3000: down to 2000
	want := map[digest.Digest]bool{ds[0]: true, ds[1]: false, ds[2]: false, d: true}
	for d, local := range want {
		if has(t, r.local, d) != local || !has(t, r.shared, d) {
			t.Errorf("%s: local %t, shared %t; want local %t, shared true", d, has(t, r.local, d), has(t, r.shared, d), local)
		}
	}
	if got := read(t, r.Store, ds[1]); string(got) != string(blobs[1]) {
		t.Error("an evicted copy does not read back from the shared tier")
	}
	if n := testutil.ToFloat64(r.m.TierLocalEvictions); n != 2 {
		t.Errorf("local evictions: %v, want 2", n)
	}
}

// TestEvictedWhileReadStaysReadable: eviction does not wait for readers.
// It need not: the disk store's content is an open *os.File, which on
// Linux reads on after its file is removed.
func TestEvictedWhileReadStaysReadable(t *testing.T) {
	r := newRig(t, tier.Options{LocalMaxSize: 100 << 10})
	b, d := content(t, 64<<10)
	putIn(t, r, b, d)
	c, err := r.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	other, od := content(t, 64<<10)
	putIn(t, r, other, od) // past the cap: d, opened less recently, goes
	if has(t, r.local, d) {
		t.Fatal("the copy being read was not evicted; the test proves nothing")
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(head)+string(rest) != string(b) {
		t.Errorf("reader after eviction: %d bytes, %v; want all %d", len(head)+len(rest), err, len(b))
	}
}

// TestNewRebuildsTheLocalRecord: a restarted replica learns what its
// local tier holds from a walk, and a cap lowered since is enforced at
// once.
func TestNewRebuildsTheLocalRecord(t *testing.T) {
	localDir, sharedDir := t.TempDir(), t.TempDir()
	s := newTier(t, openDisk(t, localDir), openDisk(t, sharedDir), tier.Options{})
	for range 4 {
		b, d := content(t, 1000)
		putIn(t, s, b, d)
	}
	s.Close()
	local := openDisk(t, localDir)
	newTier(t, local, openDisk(t, sharedDir), tier.Options{LocalMaxSize: 2500, LocalLowSize: 2000})
	n := 0
	local.Walk(ctx, func(digest.Digest, int64) error { n++; return nil })
	if n != 2 {
		t.Errorf("%d local copies after reopening under a 2500-byte cap, want 2", n)
	}
}

// TestContentPastTheCapStaysShared: content larger than the whole local
// tier is stored (in the shared tier) but not kept locally, where it
// would only evict everything else, itself included; a miss of it starts
// no copy.
func TestContentPastTheCapStaysShared(t *testing.T) {
	r := newRig(t, tier.Options{LocalMaxSize: 1000})
	small, sd := content(t, 500)
	putIn(t, r, small, sd)
	big, bd := content(t, 2000)
	f, _ := r.TempFile()
	defer f.Close()
	f.Write(big)
	if err := r.Put(ctx, f, bd, int64(len(big))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("staged path after Put: %v; want it gone", err)
	}
	if has(t, r.local, bd) || !has(t, r.shared, bd) || !has(t, r.local, sd) {
		t.Errorf("big: local %t, shared %t; small kept locally %t; want false, true, true",
			has(t, r.local, bd), has(t, r.shared, bd), has(t, r.local, sd))
	}
	done := watch(r.Store)
	if got := read(t, r.Store, bd); !bytes.Equal(got, big) {
		t.Error("the big blob does not read back from the shared tier")
	}
	r.Close() // waits for a promotion, had one started
	if len(done) != 0 || has(t, r.local, bd) {
		t.Errorf("%d promotions of the big blob, local copy %t; want none", len(done), has(t, r.local, bd))
	}
}
