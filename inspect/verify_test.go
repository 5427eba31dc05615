package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/warm"
)

// TestRepairRemovesThroughTheLockedPath: verify --repair takes a corrupt
// item out the way eviction and deletes do (Cache.Remove), so afterwards
// the usage totals and their gauges agree with what the store holds,
// nothing answers from the hot manifests, and the next pull fetches the
// layer again rather than find it linked.
// cache's TestRemoveTakesTheLockedPath checks the hot sets and the access
// log from inside.
func TestRepairRemovesThroughTheLockedPath(t *testing.T) {
	mr := newMirror(t)
	c, dir, m := mr.c, mr.dir, mr.m
	ctx := context.Background()
	repo := mr.repo("team/app")
	img := mr.pull(t, "team/app", "v1", layer(t, 1000))
	if _, err := c.StoredManifest(img.manifest); err != nil { // now hot
		t.Fatal(err)
	}
	if b, err := c.Blob(ctx, repo, img.layers[0]); err != nil || b.File == nil { // its link now hot
		t.Fatalf("the layer is no hit after the pull: %v", err)
	} else {
		b.Close()
	}

	// Rot: the manifest's and the layer's bytes change on disk.
	rotten := []digest.Digest{img.manifest, img.layers[0]}
	for _, d := range rotten {
		if err := os.WriteFile(blobPath(dir, d), []byte("rot"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quarantine := filepath.Join(dir, "quarantine")
	rep, err := inspect.Verify(ctx, c, inspect.VerifyOptions{Quarantine: quarantine})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 3 || len(rep.Corrupt) != 2 || rep.Quarantined != 2 {
		t.Fatalf("checked %d, corrupt %d, quarantined %d; want 3, 2, 2 (%+v)", rep.Checked, len(rep.Corrupt), rep.Quarantined, rep.Corrupt)
	}
	for _, d := range rotten {
		if b, err := os.ReadFile(filepath.Join(quarantine, d.Encoded())); err != nil || string(b) != "rot" {
			t.Errorf("quarantine/%s: %q, %v; want the rotten bytes kept for the operator", d.Encoded(), b, err)
		}
	}

	var held, items int64
	if err := c.Items(func(it cache.Item) error { held, items = held+it.Size, items+1; return nil }); err != nil {
		t.Fatal(err)
	}
	if size, _ := c.HasContent(img.config); items != 1 || size == 0 || held != size {
		t.Fatalf("the index holds %d items of %d bytes, want only the config (%d bytes)", items, held, size)
	}
	for _, d := range rotten {
		if _, err := os.Stat(blobPath(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s is still on disk: %v", d, err)
		}
	}
	b, n := c.Usage()
	if gb, gn := testutil.ToFloat64(m.CacheSize), testutil.ToFloat64(m.CacheBlobs); b != held || n != items || gb != float64(held) || gn != float64(items) {
		t.Errorf("Usage says %d bytes in %d items, the gauges %v in %v; the store holds %d in %d", b, n, gb, gn, held, items)
	}
	if _, err := c.StoredManifest(img.manifest); err == nil {
		t.Errorf("%s still answers from the hot manifests", img.manifest)
	}
	if rep, err := inspect.Verify(ctx, c, inspect.VerifyOptions{}); err != nil || rep.Checked != 1 || len(rep.Corrupt) != 0 {
		t.Errorf("verify after repair: %+v, %v; want 1 sound item", rep, err)
	}
	if rep, err := warm.Image(ctx, c, repo, "v1", nil, nil); err != nil || rep.Fetched != 1 {
		t.Errorf("pull after repair: %+v, %v; want the layer fetched again", rep, err)
	}
}

// TestVerifyNamesEachDamage: each kind of damage is reported with its
// reason; without a quarantine directory nothing is removed; progress
// ends at the bytes read, once per item.
func TestVerifyNamesEachDamage(t *testing.T) {
	mr := newMirror(t)
	c, dir := mr.c, mr.dir
	img := mr.pull(t, "team/app", "v1", layer(t, 100), layer(t, 200), layer(t, 300))
	rot, cut, gone := img.layers[0], img.layers[1], img.layers[2]
	cutSize, _ := c.HasContent(cut)
	b, _ := os.ReadFile(blobPath(dir, rot))
	b[0] ^= 0xff
	os.WriteFile(blobPath(dir, rot), b, 0o644)
	os.Truncate(blobPath(dir, cut), cutSize-1)
	os.Remove(blobPath(dir, gone))
	bytesBefore, itemsBefore := c.Usage()

	var calls int
	var last, total int64
	rep, err := inspect.Verify(context.Background(), c, inspect.VerifyOptions{Progress: func(done, all int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		calls, last, total = calls+1, done, all
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[digest.Digest]string{
		rot:  "content does not hash to its digest",
		cut:  fmt.Sprintf("size %d, index says %d", cutSize-1, cutSize),
		gone: "missing file",
	}
	got := map[digest.Digest]string{}
	for _, x := range rep.Corrupt {
		got[x.Digest] = x.Reason
	}
	for d, reason := range want {
		if !strings.Contains(got[d], reason) {
			t.Errorf("%s: reason %q, want %q", d, got[d], reason)
		}
	}
	if len(rep.Corrupt) != 3 || rep.Quarantined != 0 || rep.Checked != 5 {
		t.Errorf("report %+v: want 5 checked, 3 corrupt, none quarantined", rep)
	}
	if calls != rep.Checked || last != rep.Bytes || total != bytesBefore {
		t.Errorf("progress: %d calls ending at %d of %d; want %d calls ending at %d of %d", calls, last, total, rep.Checked, rep.Bytes, bytesBefore)
	}
	if b, n := c.Usage(); b != bytesBefore || n != itemsBefore {
		t.Errorf("a check without repair changed the store: %d bytes in %d items, was %d in %d", b, n, bytesBefore, itemsBefore)
	}
}

// TestVerifyStopsWhenCancelled: an operator's Ctrl-C ends the walk.
func TestVerifyStopsWhenCancelled(t *testing.T) {
	mr := newMirror(t)
	c := mr.c
	mr.pull(t, "team/app", "v1", layer(t, 10))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if rep, err := inspect.Verify(ctx, c, inspect.VerifyOptions{}); !errors.Is(err, context.Canceled) || rep.Checked != 0 {
		t.Errorf("cancelled verify: %+v, %v; want nothing checked and context.Canceled", rep, err)
	}
}
