package cache

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
)

func openTest(t testing.TB, dir string) *Cache {
	t.Helper()
	c, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeBlob(t testing.TB, dir string, b []byte, name digest.Digest) {
	t.Helper()
	p := filepath.Join(dir, "blobs", "sha256", name.Encoded()[:2], name.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestRestartReconcilesIndexAndFiles plays out what a crash can leave: a
// verified file the index never heard of, an index entry whose file is
// gone, a file whose bytes do not match its name, and a stray temp file.
func TestRestartReconcilesIndexAndFiles(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir)
	kept := randomBytes(1000)
	dKept := digest.FromBytes(kept)
	if err := c.putBytes(context.Background(), dKept, kept); err != nil {
		t.Fatal(err)
	}
	if err := c.recordContent(dKept, 1000, "", nil, false); err != nil {
		t.Fatal(err)
	}
	gone := digest.FromString("gone")
	if err := c.index.PutBlob(gone, index.BlobMeta{Size: 4}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	orphan := randomBytes(2000)
	dOrphan := digest.FromBytes(orphan)
	writeBlob(t, dir, orphan, dOrphan)
	bad := digest.FromString("what the name promises")
	writeBlob(t, dir, []byte("something else"), bad)
	os.WriteFile(filepath.Join(dir, "tmp", "fill-123"), []byte("half a blob"), 0o644)

	c = openTest(t, dir)
	defer c.Close()
	if _, err := c.index.Blob(gone); err == nil {
		t.Error("an index entry without its file survived the restart")
	}
	if m, err := c.index.Blob(dOrphan); err != nil || m.Size != 2000 {
		t.Errorf("a verified file unknown to the index was not adopted: %+v %v", m, err)
	}
	if _, err := c.store.Stat(context.Background(), bad); err == nil {
		t.Error("a file that does not hash to its name was kept")
	}
	if _, err := c.index.Blob(dKept); err != nil {
		t.Error("a sound entry was lost")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Error("temp files were not swept")
	}
	if size, items := c.Usage(); size != 3000 || items != 2 {
		t.Errorf("usage %d bytes / %d items, want 3000 / 2", size, items)
	}
}

// BenchmarkOpen100kBlobs measures start-up (sweep, reconcile, usage) with
// 100 000 stored blobs; the target is under 2 s.
//
//	go test -run '^$' -bench Open100k -benchtime 3x ./cache/
func BenchmarkOpen100kBlobs(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	c := openTest(b, dir)
	now := time.Now()
	for i := 0; i < n; i++ {
		body := []byte(fmt.Sprintf("blob %d", i))
		d := digest.FromBytes(body)
		writeBlob(b, dir, body, d)
		if err := c.index.PutBlob(d, index.BlobMeta{Size: int64(len(body)), Added: now}); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := openTest(b, dir)
		b.StopTimer()
		if _, items := c.Usage(); items != n {
			b.Fatalf("%d items after open, want %d", items, n)
		}
		c.Close()
		b.StartTimer()
	}
}
