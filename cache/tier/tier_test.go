package tier_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/storetest"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
)

var ctx = context.Background()

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

func openDisk(t *testing.T, dir string) *disk.Store {
	t.Helper()
	s, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTier opens a tier closed when t ends.
func newTier(t *testing.T, local *disk.Store, shared tier.Shared, opts tier.Options) *tier.Store {
	t.Helper()
	s, err := tier.New(ctx, local, shared, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rig is a tier over two fresh disk stores, the shared one behind a
// faulty wrapper, with a metrics registry of its own.
type rig struct {
	*tier.Store
	local  *disk.Store
	shared *faulty
	m      *metrics.Metrics
}

func newRig(t *testing.T, opts tier.Options) *rig {
	t.Helper()
	r := &rig{local: openDisk(t, t.TempDir()), m: metrics.New(prometheus.NewRegistry())}
	r.shared = &faulty{Store: openDisk(t, t.TempDir())}
	opts.Metrics = r.m
	r.Store = newTier(t, r.local, r.shared, opts)
	return r
}

// faulty is a shared tier (a disk store) whose calls a test can intercept.
type faulty struct {
	*disk.Store
	put   func(f *os.File, d digest.Digest) error // before the real Put; its error fails it
	del   error                                   // Delete's error
	gate  chan struct{}                           // when set, reads of opened content wait for it to close
	mu    sync.Mutex
	opens int
}

func (s *faulty) Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	if s.put != nil {
		if err := s.put(f, d); err != nil {
			return err
		}
	}
	return s.Store.Put(ctx, f, d, size)
}

func (s *faulty) Delete(ctx context.Context, d digest.Digest) error {
	if s.del != nil {
		return s.del
	}
	return s.Store.Delete(ctx, d)
}

func (s *faulty) Open(ctx context.Context, d digest.Digest) (tier.Content, error) {
	s.mu.Lock()
	s.opens++
	s.mu.Unlock()
	c, err := s.Store.Open(ctx, d)
	if err != nil || s.gate == nil {
		return c, err
	}
	return gated{c, s.gate}, nil
}

func (s *faulty) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// gated content blocks every read until its gate is closed.
type gated struct {
	tier.Content
	gate chan struct{}
}

func (g gated) Read(p []byte) (int, error) {
	<-g.gate
	return g.Content.Read(p)
}

func content(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b, digest.FromBytes(b)
}

// putIn stages b in s and puts it as d.
func putIn(t *testing.T, s interface {
	TempFile() (*os.File, error)
	Put(context.Context, *os.File, digest.Digest, int64) error
}, b []byte, d digest.Digest) {
	t.Helper()
	f, err := s.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f, d, int64(len(b))); err != nil {
		t.Fatalf("Put %s: %v", d, err)
	}
}

func has(t *testing.T, s interface {
	Stat(context.Context, digest.Digest) (int64, error)
}, d digest.Digest) bool {
	t.Helper()
	_, err := s.Stat(ctx, d)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func read(t *testing.T, s *tier.Store, d digest.Digest) []byte {
	t.Helper()
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	return b
}

// promotions collects the ends of promotions.
type promotions chan error

func watch(s *tier.Store) promotions {
	p := make(promotions, 16)
	s.OnPromoted(func(_ digest.Digest, err error) { p <- err })
	return p
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
	r.shared.gate = make(chan struct{})
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
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
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
