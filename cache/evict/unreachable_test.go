package evict

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		items     []Item
		protected []string
		tagged    []string
		want      []string // as a set; the order is checked apart
	}{
		{
			name: "what tags reach stays, the rest goes",
			items: []Item{
				item("m1", 1, 0, "l1", "shared"), item("l1", 1, 0), item("shared", 1, 0),
				item("m0", 1, 0, "l0", "shared"), item("l0", 1, 0), // a tag moved on from m0
				item("x", 1, 0), // fetched by digest alone
			},
			tagged: []string{"m1"},
			want:   []string{"m0", "l0", "x"},
		},
		{
			name: "an index reaches its children and their layers",
			items: []Item{
				item("idx", 1, 0, "c1", "c2"), item("c1", 1, 0, "l1"), item("c2", 1, 0, "l2"),
				item("l1", 1, 0), item("l2", 1, 0), item("x", 1, 0),
			},
			tagged: []string{"idx"},
			want:   []string{"x"},
		},
		{
			name: "pinned content and its tree stay untagged",
			items: []Item{
				pinned(item("m1", 1, 0, "l1")), item("l1", 1, 0),
				item("m2", 1, 0, "l2"), item("l2", 1, 0),
			},
			want: []string{"m2", "l2"},
		},
		{
			name: "protected digests and their tree stay untagged",
			items: []Item{
				item("m1", 1, 0, "l1"), item("l1", 1, 0),
				item("m2", 1, 0, "l2"), item("l2", 1, 0),
			},
			protected: []string{"m2"},
			want:      []string{"m1", "l1"},
		},
		{
			name:   "no tags: everything unpinned goes",
			items:  []Item{item("m1", 1, 0, "l1"), item("l1", 1, 0), pinned(item("x", 1, 0))},
			tagged: nil,
			want:   []string{"m1", "l1"},
		},
		{
			name: "cycles, self-references and missing digests neither loop nor panic",
			items: []Item{
				item("a", 1, 0, "b"), item("b", 1, 0, "a"), // unreachable cycle
				item("s", 1, 0, "s"),
				item("t", 1, 0, "c", "missing"), item("c", 1, 0, "d"), item("d", 1, 0, "c"), // reachable cycle
			},
			tagged: []string{"t", "not stored"},
			want:   []string{"a", "b", "s"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewPlan(tc.items, dgs(tc.protected...)).Unreachable(dgs(tc.tagged...))
			var gotNames []string
			gone := map[digest.Digest]bool{}
			pos := map[digest.Digest]int{}
			for i, it := range got {
				gotNames = append(gotNames, name(it.Digest))
				gone[it.Digest] = true
				pos[it.Digest] = i
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			slices.Sort(gotNames)
			if !slices.Equal(gotNames, want) {
				t.Errorf("unreachable %v, want %v", gotNames, want)
			}
			noDangling(t, tc.items, gone)
			// Referrers first, so a collection cut short leaves no manifest
			// pointing at removed content (cycles have no such order).
			for _, it := range got {
				for _, r := range it.Refs {
					if p, ok := pos[r]; ok && p < pos[it.Digest] && !reaches(tc.items, r, it.Digest) {
						t.Errorf("%s comes before %s, which references it", name(r), name(it.Digest))
					}
				}
			}
		})
	}
}

// reaches reports whether from reaches to through references.
func reaches(items []Item, from, to digest.Digest) bool {
	refs := map[digest.Digest][]digest.Digest{}
	for _, it := range items {
		refs[it.Digest] = it.Refs
	}
	seen := map[digest.Digest]bool{}
	stack := []digest.Digest{from}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == to {
			return true
		}
		if !seen[x] {
			seen[x] = true
			stack = append(stack, refs[x]...)
		}
	}
	return false
}

// TestUnreachableIsRepeatable: the order does not depend on map order.
func TestUnreachableIsRepeatable(t *testing.T) {
	var items []Item
	for _, n := range []string{"a", "b", "c", "d", "m0", "m1", "l0", "l1"} {
		items = append(items, item(n, 1, 0))
	}
	items = append(items, item("idx", 1, 0, "m0", "m1"))
	first := NewPlan(items, nil).Unreachable(nil)
	for range 20 {
		if again := NewPlan(items, nil).Unreachable(nil); !slices.EqualFunc(first, again, func(a, b Item) bool { return a.Digest == b.Digest }) {
			t.Fatal("two collections of the same store disagree on the order")
		}
	}
}
