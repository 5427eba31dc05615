package tier_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/oci"
)

// TestMissIsPromoted: content only the shared tier holds (another replica
// put it) is served from there, copied in the background, and then served
// locally.
func TestMissIsPromoted(t *testing.T) {
	r := newRig(t, tier.Options{})
	done := watch(r.Store)
	b, d := content(t, 64<<10)
	putIn(t, r.shared, b, d)
	if got := read(t, r.Store, d); string(got) != string(b) {
		t.Fatal("a miss read other bytes than the shared tier's")
	}
	if err := <-done; err != nil {
		t.Fatalf("promotion: %v", err)
	}
	c, err := r.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*os.File); !ok || !has(t, r.local, d) {
		t.Errorf("after the promotion Open returned a %T (local copy: %t); want the local *os.File", c, has(t, r.local, d))
	}
	for name, c := range map[string]prometheus.Collector{
		"shared reads": r.m.TierSharedReads, "local hits": r.m.TierLocalHits, "promotions": r.m.TierPromotions.WithLabelValues("ok"),
	} {
		if n := testutil.ToFloat64(c); n != 1 {
			t.Errorf("%s: %v, want 1", name, n)
		}
	}
	if n := testutil.ToFloat64(r.m.TierPromotedBytes); n != float64(len(b)) {
		t.Errorf("promoted bytes: %v, want %d", n, len(b))
	}
}

// TestCorruptSharedObjectNeverEntersTheLocalTier: the shared tier is
// trusted no more than an upstream; an object whose bytes are not its
// digest's is never kept as a verified local copy.
func TestCorruptSharedObjectNeverEntersTheLocalTier(t *testing.T) {
	r := newRig(t, tier.Options{})
	done := watch(r.Store)
	b, d := content(t, 8192)
	b[100] ^= 1 // the disk store takes the caller's word for the digest
	putIn(t, r.shared, b, d)
	read(t, r.Store, d) // the client's own digest check is what fails it
	if err := <-done; !errors.Is(err, oci.ErrDigestMismatch) {
		t.Errorf("promotion: %v; want a digest mismatch", err)
	}
	if has(t, r.local, d) {
		t.Error("the corrupt object entered the local tier")
	}
	if n := testutil.ToFloat64(r.m.TierPromotions.WithLabelValues("corrupt")); n != 1 {
		t.Errorf("corrupt promotions: %v, want 1", n)
	}
	f, _ := r.local.TempFile()
	defer f.Close()
	if entries, _ := os.ReadDir(filepath.Dir(f.Name())); len(entries) != 1 {
		t.Errorf("the local staging directory holds %d files, want only the probe", len(entries))
	}
}

// TestOnePromotionPerDigest: however many opens miss a digest while its
// promotion runs, it runs once.
func TestOnePromotionPerDigest(t *testing.T) {
	r := newRig(t, tier.Options{})
	r.shared.gate = make(chan struct{})
	done := watch(r.Store)
	b, d := content(t, 4096)
	putIn(t, r.shared, b, d)
	const clients = 10
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.Open(ctx, d)
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(r.shared.gate)
	if err := <-done; err != nil {
		t.Fatalf("promotion: %v", err)
	}
	r.Close() // waits for any other promotion, which would then be in done
	if len(done) != 0 || r.shared.openCount() != clients+1 {
		t.Errorf("%d more promotions, %d opens of the shared tier; want none and %d", len(done), r.shared.openCount(), clients+1)
	}
	if !has(t, r.local, d) {
		t.Error("the one promotion kept nothing")
	}
}

// TestPromotionsAreBounded: past Options.Promotions running at once, a
// miss is served without starting another.
func TestPromotionsAreBounded(t *testing.T) {
	r := newRig(t, tier.Options{Promotions: 1})
	r.shared.gate = make(chan struct{})
	done := watch(r.Store)
	b1, d1 := content(t, 100)
	b2, d2 := content(t, 100)
	putIn(t, r.shared, b1, d1)
	putIn(t, r.shared, b2, d2)
	for _, d := range []digest.Digest{d1, d2} {
		c, err := r.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	close(r.shared.gate)
	<-done
	r.Close()
	if len(done) != 0 || !has(t, r.local, d1) || has(t, r.local, d2) {
		t.Errorf("%d more promotions ended; local copies: first %t, second %t; want only the first promoted",
			len(done), has(t, r.local, d1), has(t, r.local, d2))
	}
}

// TestCloseWaitsForPromotions: Close cancels a promotion under way and
// returns only once it has ended, keeping nothing of it.
func TestCloseWaitsForPromotions(t *testing.T) {
	r := newRig(t, tier.Options{})
	r.shared.gate, r.shared.waiting = make(chan struct{}), make(chan struct{})
	ended := false
	r.OnPromoted(func(_ digest.Digest, err error) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("promotion ended with %v, want context.Canceled", err)
		}
		ended = true
	})
	b, d := content(t, 4096)
	putIn(t, r.shared, b, d)
	c, err := r.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-r.shared.waiting // the promotion is blocked in its read
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	// The gate opens only once Close has cancelled: opened before, the
	// promotion could read to the end and finish first.
	<-r.Stopping()
	select {
	case <-closed:
		t.Fatal("Close returned while a promotion was blocked in a read")
	default:
	}
	close(r.shared.gate) // the read returns; the copy then sees the cancel
	<-closed
	if !ended {
		t.Error("Close returned before the promotion ended")
	}
	if has(t, r.local, d) {
		t.Error("a cancelled promotion kept a local copy")
	}
}

// TestNoPromotionsReadsThrough: with NoPromotions (a command that reads
// everything once, wharf verify), every miss is read from the shared
// tier and nothing is copied into the local one.
func TestNoPromotionsReadsThrough(t *testing.T) {
	r := newRig(t, tier.Options{Promotions: tier.NoPromotions})
	done := watch(r.Store)
	b, d := content(t, 4096)
	putIn(t, r.shared, b, d)
	for range 2 {
		if got := read(t, r.Store, d); string(got) != string(b) {
			t.Fatal("a miss read other bytes than the shared tier's")
		}
	}
	r.Close() // waits for promotions: any would be in done by now
	if len(done) != 0 || has(t, r.local, d) {
		t.Errorf("%d promotions ended, local copy %t; want none", len(done), has(t, r.local, d))
	}
	if n := testutil.ToFloat64(r.m.TierSharedReads); n != 2 {
		t.Errorf("shared reads: %v, want 2", n)
	}
}
