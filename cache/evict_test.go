package cache

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
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
