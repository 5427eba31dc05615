package evict

import (
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// The tests name items by words; dg turns a name into its digest and
// remembers it, and name turns the digest back for messages.
var (
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names = map[digest.Digest]string{}
)

func dg(n string) digest.Digest {
	d := digest.FromString(n)
	names[d] = n
	return d
}

func name(d digest.Digest) string { return names[d] }

func dgs(names ...string) []digest.Digest {
	var out []digest.Digest
	for _, n := range names {
		out = append(out, dg(n))
	}
	return out
}

// item is content of size bytes last used at minute used, referencing refs.
func item(name string, size int64, used int, refs ...string) Item {
	return Item{Digest: dg(name), Size: size, LastUse: epoch.Add(time.Duration(used) * time.Minute), Refs: dgs(refs...)}
}

func pinned(it Item) Item { it.Pinned = true; return it }

// noDangling fails when an item that stayed references one that went:
// the invariant eviction exists to keep.
func noDangling(t *testing.T, items []Item, gone map[digest.Digest]bool) {
	t.Helper()
	for _, it := range items {
		if gone[it.Digest] {
			continue
		}
		for _, r := range it.Refs {
			if gone[r] {
				t.Errorf("kept %s references removed %s", name(it.Digest), name(r))
			}
		}
	}
}

func TestEvict(t *testing.T) {
	for _, tc := range []struct {
		name      string
		items     []Item
		protected []string
		refuse    []string // the removal refuses these, as for a blob a client holds
		need      int64    // enough is true once this much is freed
		want      []string // removed, in order
	}{
		{
			name:  "oldest first",
			items: []Item{item("a", 1, 3), item("b", 1, 1), item("c", 1, 2)},
			need:  100,
			want:  []string{"b", "c", "a"},
		},
		{
			name:  "target reached stops",
			items: []Item{item("a", 1, 3), item("b", 1, 1), item("c", 1, 2)},
			need:  2,
			want:  []string{"b", "c"},
		},
		{
			name:  "nothing to free asks before the first image",
			items: []Item{item("a", 1, 1)},
			need:  0,
			want:  nil,
		},
		{
			name:  "an image goes whole even past the target",
			items: []Item{item("m1", 1, 1, "l1", "l2"), item("l1", 10, 5), item("l2", 10, 5), item("m2", 1, 2, "l3"), item("l3", 10, 5)},
			need:  1,
			want:  []string{"m1", "l1", "l2"},
		},
		{
			name: "a shared layer stays while another image references it",
			items: []Item{
				item("m1", 1, 1, "l1", "shared"), item("l1", 10, 9), item("shared", 10, 9),
				item("m2", 1, 2, "l2", "shared"), item("l2", 10, 9),
			},
			need: 11,
			want: []string{"m1", "l1"},
		},
		{
			name: "a shared layer goes with the last image referencing it",
			items: []Item{
				item("m1", 1, 1, "l1", "shared"), item("l1", 10, 9), item("shared", 10, 9),
				item("m2", 1, 2, "l2", "shared"), item("l2", 10, 9),
			},
			need: 100,
			want: []string{"m1", "l1", "m2", "l2", "shared"},
		},
		{
			name: "an index goes with its child manifests, referrer first",
			items: []Item{
				item("idx", 1, 1, "c1", "c2"),
				item("c1", 1, 9, "l1", "common"), item("c2", 1, 9, "l2", "common"),
				item("l1", 10, 9), item("l2", 10, 9), item("common", 10, 9),
			},
			need: 1,
			want: []string{"idx", "c1", "l1", "c2", "l2", "common"},
		},
		{
			name: "pinned content and its whole tree are kept",
			items: []Item{
				pinned(item("m1", 1, 0, "l1", "shared")), item("l1", 10, 0), item("shared", 10, 0),
				item("m2", 1, 1, "l2", "shared"), item("l2", 10, 1),
			},
			need: 100,
			want: []string{"m2", "l2"},
		},
		{
			name: "a pinned child keeps what it references, not its parent",
			items: []Item{
				item("idx", 1, 0, "c1", "c2"),
				pinned(item("c1", 1, 0, "l1")), item("c2", 1, 0, "l2"),
				item("l1", 10, 0), item("l2", 10, 0),
			},
			need: 100,
			want: []string{"idx", "c2", "l2"},
		},
		{
			name: "protected digests (Options.Pins) keep their whole tree",
			items: []Item{
				item("idx", 1, 0, "c1"), item("c1", 1, 0, "l1"), item("l1", 10, 0),
				item("x", 1, 5),
			},
			protected: []string{"idx", "not stored"},
			need:      100,
			want:      []string{"x"},
		},
		{
			name: "a refused root keeps its image",
			items: []Item{
				item("m1", 1, 1, "l1", "shared"), item("l1", 10, 1), item("shared", 10, 1),
				item("m2", 1, 2, "l2", "shared"), item("l2", 10, 2),
			},
			refuse: []string{"m1"},
			need:   100,
			want:   []string{"m2", "l2"},
		},
		{
			name: "a refused child manifest keeps what only it references",
			items: []Item{
				item("idx", 1, 1, "c1", "c2"),
				item("c1", 1, 1, "l1", "common"), item("c2", 1, 1, "l2", "common"),
				item("l1", 10, 1), item("l2", 10, 1), item("common", 10, 1),
			},
			refuse: []string{"c1"},
			need:   100,
			want:   []string{"idx", "c2", "l2"},
		},
		{
			name:   "a refused layer stays, the rest of its image goes",
			items:  []Item{item("m1", 1, 1, "l1", "l2"), item("l1", 10, 1), item("l2", 10, 1)},
			refuse: []string{"l1"},
			need:   100,
			want:   []string{"m1", "l2"},
		},
		{
			name: "cycles, self-references and missing references neither loop nor panic",
			items: []Item{
				item("r", 1, 1, "a", "missing"), item("a", 1, 1, "b"), item("b", 1, 1, "a"),
				item("s", 1, 0, "s"),
				item("t", 1, 2, "missing", "missing"),
			},
			need: 100,
			want: []string{"r", "t"},
		},
		{
			name: "a reference listed twice counts twice",
			items: []Item{
				item("m1", 1, 1, "l1", "l1"), item("l1", 10, 1),
				item("m2", 1, 2, "l1"),
			},
			need: 100,
			want: []string{"m1", "m2", "l1"},
		},
		{
			name:  "nothing evictable",
			items: []Item{pinned(item("m1", 1, 1, "l1")), item("l1", 1, 1)},
			need:  100,
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := NewPlan(tc.items, dgs(tc.protected...))
			refuse := map[digest.Digest]bool{}
			for _, r := range tc.refuse {
				refuse[dg(r)] = true
			}
			var got []string
			var offered []digest.Digest
			gone := map[digest.Digest]bool{}
			var sum int64
			freed, n := plan.Evict(
				func() bool { return sum >= tc.need },
				func(it Item) bool {
					if gone[it.Digest] {
						t.Errorf("%s offered again after its removal", name(it.Digest))
					}
					offered = append(offered, it.Digest)
					if refuse[it.Digest] {
						return false
					}
					gone[it.Digest] = true
					sum += it.Size
					got = append(got, name(it.Digest))
					return true
				})
			if !slices.Equal(got, tc.want) {
				t.Errorf("removed %v, want %v", got, tc.want)
			}
			if freed != sum || n != len(got) {
				t.Errorf("Evict reported %d bytes in %d items, removal saw %d in %d", freed, n, sum, len(got))
			}
			for d := range refuse {
				if !slices.Contains(offered, d) {
					t.Errorf("%s never offered: the refusal was not exercised", name(d))
				}
			}
			noDangling(t, tc.items, gone)
		})
	}
}

// TestEvictBreaksTiesByDigest: roots last used at the same instant go in
// digest order, so that a run does not depend on map order.
func TestEvictBreaksTiesByDigest(t *testing.T) {
	items := []Item{item("a", 1, 1), item("b", 1, 1), item("c", 1, 1), item("d", 1, 1)}
	want := dgs("a", "b", "c", "d")
	slices.Sort(want)
	for range 20 {
		var got []digest.Digest
		NewPlan(items, nil).Evict(func() bool { return false }, func(it Item) bool {
			got = append(got, it.Digest)
			return true
		})
		if !slices.Equal(got, want) {
			t.Fatalf("removed %v, want digest order %v", got, want)
		}
	}
}
