package index

import (
	"errors"
	"fmt"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// TestUnwaitedBatchIsReadAtOnceAndKeptByClose: what an unwaited batch
// holds (a content record, links, a tag's record) is what the very next
// read returns, though Commit did not wait for the write; Close waits for
// the writes, so a reopened index holds every batch; a batch committed
// once Close began is refused.
func TestUnwaitedBatchIsReadAtOnceAndKeptByClose(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	failed := func(err error) { t.Errorf("unwaited write failed: %v", err) }
	const n = 200
	ds := make([]digest.Digest, n)
	for i := range n {
		ds[i] = digest.FromString(fmt.Sprint(i))
		b := x.Unwaited(failed)
		meta := BlobMeta{Size: int64(i), MediaType: "application/vnd.oci.image.manifest.v1+json", Added: at(1)}
		rec := TagRecord{Digest: ds[i], MediaType: meta.MediaType, Size: meta.Size, Checked: at(2)}
		if err := b.PutBlob(ds[i], meta); err != nil {
			t.Fatal(err)
		}
		if err := b.PutLinks("team/app", ds[i]); err != nil {
			t.Fatal(err)
		}
		if err := b.PutTag("team/app", fmt.Sprint("t", i), "", rec); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Discard()
		if got, err := x.Blob(ds[i]); err != nil || got.Size != int64(i) {
			t.Fatalf("batch %d: blob %+v, %v right after Commit", i, got, err)
		}
		if ok, err := x.HasLink("team/app", ds[i]); !ok || err != nil {
			t.Fatalf("batch %d: link %v, %v right after Commit", i, ok, err)
		}
		if got, err := x.Tag("team/app", fmt.Sprint("t", i), ""); err != nil || got.Digest != ds[i] {
			t.Fatalf("batch %d: tag %+v, %v right after Commit", i, got, err)
		}
	}
	late := x.Unwaited(failed)
	defer late.Discard()
	if err := late.PutBlob(ds[0], BlobMeta{Size: 1, Pinned: true}); err == nil {
		t.Error("a pinned record was taken by a batch not waited for")
	}
	x = reopen(t, x, dir)
	for i, d := range ds {
		if got, err := x.Blob(d); err != nil || got.Size != int64(i) {
			t.Errorf("after a reopen, blob %d: %+v, %v", i, got, err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	b := x.Unwaited(failed)
	defer b.Discard()
	if err := b.Commit(); !errors.Is(err, badger.ErrDBClosed) {
		t.Errorf("a commit after Close: %v, want ErrDBClosed", err)
	}
}
