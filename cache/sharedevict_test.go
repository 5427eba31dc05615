package cache

import (
	"context"
	"errors"
	"io/fs"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
)

// sharedDisk is a disk store two caches share, standing in for a bucket
// the replicas share: it says its content is verified, as cache/tier
// does, and counts opens.
type sharedDisk struct {
	*disk.Store
	opens atomic.Int64
}

func (s *sharedDisk) Verified() bool { return true }

func (s *sharedDisk) Open(ctx context.Context, d digest.Digest) (Content, error) {
	s.opens.Add(1)
	return s.Store.Open(ctx, d)
}

func openSharedDisk(t *testing.T, dir string) *sharedDisk {
	t.Helper()
	st, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &sharedDisk{Store: st}
}

// A store of verified content is reconciled without reading it back:
// content the index does not know is adopted by its size, unopened.
func TestReconcileTrustsAVerifiedStore(t *testing.T) {
	shared := t.TempDir()
	b := randomBytes(4096)
	d := digest.FromBytes(b)
	writeBlob(t, shared, b, d)
	st := openSharedDisk(t, shared)
	c, err := Open(Options{Dir: t.TempDir(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if size, ok := c.HasContent(d); !ok || size != 4096 {
		t.Fatalf("HasContent = %d, %v; want adopted", size, ok)
	}
	if n := st.opens.Load(); n != 0 {
		t.Errorf("reconciling a verified store opened %d objects, want 0", n)
	}
}

// Two replicas on one shared store, each with a cap the store passed:
// neither evicts on its own; the one leading eviction walks the store,
// adopts what the other put there, and evicts least recently used first
// down to the low watermark of the store's walked total.
func TestSharedEvictionOnlyWhileLeading(t *testing.T) {
	shared := t.TempDir()
	open := func(m *metrics.Metrics) *Cache {
		c, err := Open(Options{Dir: t.TempDir(), Store: openSharedDisk(t, shared), MaxSize: 4096,
			SharedEviction: true, SharedEvictEvery: 10 * time.Millisecond, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ma, mb := metrics.New(prometheus.NewRegistry()), metrics.New(prometheus.NewRegistry())
	a, b := open(ma), open(mb)
	put := func(c *Cache, n int) []digest.Digest {
		var ds []digest.Digest
		for range n {
			body := randomBytes(1024)
			d := digest.FromBytes(body)
			if err := c.putBytes(context.Background(), d, body); err != nil {
				t.Fatal(err)
			}
			if err := c.recordContent(d, 1024, "", nil, false); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		return ds
	}
	aKnows := put(a, 5) // past the cap on a's count alone
	bKnows := put(b, 3)
	stored := func(d digest.Digest) bool {
		_, err := a.store.Stat(context.Background(), d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	if used, _ := a.Usage(); used != 5120 {
		t.Fatalf("a holds %d bytes, want 5120: it evicted on its own", used)
	}

	// b leads: the store holds 8 KiB, past 95 % of 4 KiB. Its walk adopts
	// a's five items, unread and newest; it frees its own three first,
	// then as many of a's as the low watermark (85 % of 4 KiB) needs: two.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.LeadEviction(ctx); close(done) }()
	waitFor(t, "b to evict down to the low watermark", func() bool { return testutil.ToFloat64(mb.SharedSize) == 3072 })
	stop()
	<-done
	for _, d := range bKnows {
		if stored(d) {
			t.Errorf("b led eviction and kept its own %s, older than what it adopted", d)
		}
	}
	kept := 0
	for _, d := range aKnows {
		if stored(d) {
			kept++
		}
	}
	if kept != 3 {
		t.Errorf("%d of a's 5 items are left, want 3 (3 KiB ≤ 85 %% of 4 KiB)", kept)
	}
	if n := testutil.ToFloat64(ma.SharedSize); n != 0 {
		t.Errorf("a, never leading, walked the store (%v bytes)", n)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A local copy the shared store no longer has (evicted there by the
// replica leading eviction) does not vouch for content a push stores:
// the push puts it in the shared store again before it is acknowledged.
func TestPushStoresWhatOnlyALocalCopyHolds(t *testing.T) {
	local, _, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared := openSharedDisk(t, t.TempDir())
	st, err := tier.New(context.Background(), local, shared, tier.Options{LocalMaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := Open(Options{Dir: t.TempDir(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := randomBytes(512)
	d := digest.FromBytes(body)
	if err := c.putBytes(context.Background(), d, body); err != nil {
		t.Fatal(err)
	}
	if err := shared.Delete(context.Background(), d); err != nil { // the leader's eviction
		t.Fatal(err)
	}
	if _, err := st.Stat(context.Background(), d); err != nil {
		t.Fatalf("the local copy is gone too: %v", err)
	}
	if err := c.putBytes(context.Background(), d, body); err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Stat(context.Background(), d); err != nil {
		t.Errorf("stored again, yet not in the shared store: %v", err)
	}
}
