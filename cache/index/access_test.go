package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// TestAccessTimesRoundTrip: the last write of each digest's access time
// wins, to the nanosecond, and a batch leaves digests it does not name
// alone.
func TestAccessTimesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	batches := []map[digest.Digest]time.Time{
		{a: time.Unix(100, 1), b: time.Unix(100, 2)},
		{b: time.Unix(200, 999_999_999), c: time.Unix(0, 0)},
	}
	for _, batch := range batches {
		if err := x.PutAccess(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.PutAccess(nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}
	want := map[digest.Digest]time.Time{a: time.Unix(100, 1), b: time.Unix(200, 999_999_999), c: time.Unix(0, 0)}
	check := func(when string) {
		got, err := x.Accesses()
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: Accesses: %v, %v; want %v", when, got, err, want)
		}
		for d, w := range want {
			if !got[d].Equal(w) {
				t.Errorf("%s: %s last accessed %v, want %v", when, d, got[d], w)
			}
		}
	}
	check("before reopen")
	x = reopen(t, x, dir)
	check("after reopen")
}

// TestPutAccessOfALargeBatch: eviction plans from every digest's time, and
// the access log may flush more than one Badger transaction holds.
func TestPutAccessOfALargeBatch(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const n = 16_000
	batch := make(map[digest.Digest]time.Time, n)
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		batch[digest.FromBytes(b[:])] = time.Unix(int64(i), 0)
	}
	keys := make([][]byte, 0, n)
	for d := range batch {
		keys = append(keys, accessKey(d))
	}
	if fitsOneTxn(t, x, keys) {
		t.Fatalf("%d access times fit one transaction; the test needs more", n)
	}
	if err := x.PutAccess(batch); err != nil {
		t.Fatal(err)
	}
	got, err := x.Accesses()
	if err != nil || len(got) != n {
		t.Fatalf("Accesses: %d times, %v; want %d", len(got), err, n)
	}
	for d, w := range batch {
		if !got[d].Equal(w) {
			t.Fatalf("%s: %v, want %v", d, got[d], w)
		}
	}
}

// fitsOneTxn reports whether one Badger transaction could write keys (the
// premise of a test of what does not).
func fitsOneTxn(t *testing.T, x *Index, keys [][]byte) bool {
	t.Helper()
	txn := x.db.NewTransaction(true)
	defer txn.Discard()
	for _, k := range keys {
		err := txn.Set(k, make([]byte, 8))
		if errors.Is(err, badger.ErrTxnTooBig) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return true
}

// TestForgetBlobTakesItsAccessTime: evicted content leaves no access time
// behind for the next plan to trip over, and other content keeps its own.
func TestForgetBlobTakesItsAccessTime(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	gone, kept := digest.FromString("gone"), digest.FromString("kept")
	for _, d := range []digest.Digest{gone, kept} {
		if err := x.PutBlob(d, BlobMeta{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.PutAccess(map[digest.Digest]time.Time{gone: time.Unix(1, 0), kept: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := x.ForgetBlob(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Blob(gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("Blob after ForgetBlob: %v, want ErrNotFound", err)
	}
	times, err := x.Accesses()
	if _, ok := times[gone]; ok || err != nil {
		t.Errorf("access time of forgotten content: %v, %v; want none", times[gone], err)
	}
	if _, err := x.Blob(kept); err != nil || !times[kept].Equal(time.Unix(2, 0)) {
		t.Errorf("other content: %v, last accessed %v; want it kept", err, times[kept])
	}
	if err := x.ForgetBlob(digest.FromString("never stored")); err != nil {
		t.Errorf("ForgetBlob of unknown content: %v, want nil", err)
	}
}

// TestBlobsVisitsEveryRecord: eviction and reconciliation see every
// record, and stop at the first error.
func TestBlobsVisitsEveryRecord(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	want := map[digest.Digest]int64{}
	for i := range 5 {
		d := digest.FromBytes([]byte{byte(i)})
		want[d] = int64(i * 10)
		if err := x.PutBlob(d, BlobMeta{Size: int64(i * 10)}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[digest.Digest]int64{}
	if err := x.Blobs(func(d digest.Digest, m BlobMeta) error { got[d] = m.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("Blobs visited %d records, want %d", len(got), len(want))
	}
	for d, size := range want {
		if got[d] != size {
			t.Errorf("Blobs: %s is %d bytes, want %d", d, got[d], size)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := x.Blobs(func(digest.Digest, BlobMeta) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Blobs returned %v after %d calls; want fn's error after 1", err, calls)
	}
}

// TestForgetContentLinkedByThousands: a base layer shared by thousands of
// repositories has more links than one transaction can delete; it must
// still be forgotten, links and all, or eviction fails on it forever.
func TestForgetContentLinkedByThousands(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	d, other := digest.FromString("base layer"), digest.FromString("other")
	const n = 8000
	repos := make([]string, n)
	var keys [][]byte
	for i := range repos {
		repos[i] = fmt.Sprintf("registry.example.com/team-%04d/service", i)
		keys = append(keys, linkKey(repos[i], d), heldKey(d, repos[i]))
	}
	if fitsOneTxn(t, x, keys) {
		t.Fatalf("%d links fit one transaction; the test needs more", n)
	}
	if err := x.PutBlob(d, BlobMeta{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := x.PutAccess(map[digest.Digest]time.Time{d: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	err := x.batched(n, func(txn *badger.Txn, i int) error {
		if err := txn.Set(heldKey(d, repos[i]), nil); err != nil {
			return err
		}
		return txn.Set(linkKey(repos[i], d), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.PutLinks(repos[0], other); err != nil {
		t.Fatal(err)
	}

	got, err := x.ForgetContent(d)
	if err != nil || len(got) != n {
		t.Fatalf("ForgetContent: %d repositories, %v; want %d", len(got), err, n)
	}
	if _, err := x.Blob(d); !errors.Is(err, ErrNotFound) {
		t.Errorf("Blob after ForgetContent: %v, want ErrNotFound", err)
	}
	if times, _ := x.Accesses(); !times[d].IsZero() {
		t.Errorf("access time left: %v", times[d])
	}
	left := 0
	err = x.db.View(func(txn *badger.Txn) error {
		left = len(holders(txn, d))
		for _, repo := range repos {
			if _, err := txn.Get(linkKey(repo, d)); err == nil {
				left++
			}
		}
		return nil
	})
	if err != nil || left != 0 {
		t.Errorf("%d links left, %v; want none", left, err)
	}
	if ok, _ := x.HasLink(repos[0], other); !ok {
		t.Error("forgetting one digest took another's link")
	}
}
