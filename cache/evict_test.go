package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
)

// TestEvictKeepsAHeldImage: the cache feeds package evict the references
// it indexed and refuses what a client holds; a held manifest keeps its
// image (its own layer and the layer it shares), while the image nobody
// holds goes whole. Released, the held image goes too.
func TestEvictKeepsAHeldImage(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	store := func(refs ...digest.Digest) digest.Digest {
		b := randomBytes(1024)
		d := digest.FromBytes(b)
		if err := c.putBytes(context.Background(), d, b); err != nil {
			t.Fatal(err)
		}
		if err := c.recordContent(d, int64(len(b)), "", refs, false); err != nil {
			t.Fatal(err)
		}
		return d
	}
	shared, l1, l2 := store(), store(), store()
	m1, m2 := store(l1, shared), store(l2, shared)

	c.hold(m1)
	if freed, n := c.Evict(0); freed != 2048 || n != 2 {
		t.Errorf("Evict with m1 held freed %d bytes in %d items, want m2 and its own layer: 2048 in 2", freed, n)
	}
	for d, want := range map[digest.Digest]bool{m1: true, l1: true, shared: true, m2: false, l2: false} {
		if _, ok := c.HasContent(d); ok != want {
			t.Errorf("%s stored: %v, want %v", d, ok, want)
		}
	}
	c.release(m1)
	if freed, n := c.Evict(0); freed != 3072 || n != 3 {
		t.Errorf("Evict after release freed %d bytes in %d items, want 3072 in 3", freed, n)
	}
	if used, items := c.Usage(); used != 0 || items != 0 {
		t.Errorf("usage %d bytes in %d items after evicting everything", used, items)
	}
}

// BenchmarkEvict100k: 10 000 images of a manifest and 9 layers; every
// root held, so a run reads the index, plans, and offers every image
// without file I/O.
//
//	go test -run '^$' -bench Evict100k -benchmem ./cache/
func BenchmarkEvict100k(b *testing.B) {
	c := openTest(b, b.TempDir())
	defer c.Close()
	now := time.Now()
	for i := 0; i < 10_000; i++ {
		var refs []digest.Digest
		for j := 0; j < 9; j++ {
			d := digest.FromString(fmt.Sprintf("layer %d %d", i, j))
			refs = append(refs, d)
			if err := c.index.PutBlob(d, index.BlobMeta{Size: 100, Added: now}); err != nil {
				b.Fatal(err)
			}
		}
		m := digest.FromString(fmt.Sprintf("manifest %d", i))
		if err := c.index.PutBlob(m, index.BlobMeta{Size: 10, Added: now.Add(time.Duration(i) * time.Second), Refs: refs}); err != nil {
			b.Fatal(err)
		}
		c.hold(m)
	}
	c.size.Store(1 << 40)
	c.count.Store(100_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, n := c.Evict(0); n != 0 {
			b.Fatal(n)
		}
	}
}
