package evict

import (
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Item is one stored piece of content as eviction sees it.
type Item struct {
	Digest digest.Digest
	Size   int64
	// Refs are what the item references (a manifest's config, layers and
	// child manifests); empty for a blob.
	Refs []digest.Digest
	// Pinned content (pushed, imported) is never offered, nor what it
	// references.
	Pinned bool
	// LastUse orders the roots: least recently used first.
	LastUse time.Time
}

// node is an item's bookkeeping during a run.
type node struct {
	Item
	refs    int  // references from items not removed; a reference listed twice counts twice
	keep    bool // pinned or protected
	removed bool
}

// Plan is the eviction state of one run over a snapshot of the store. It
// is not safe for concurrent use.
type Plan struct {
	nodes map[digest.Digest]*node
	roots []*node // evictable roots, least recently used first
}

// NewPlan builds a plan over items, one per digest, keeping protected
// digests and what they reference as it keeps pinned content.
func NewPlan(items []Item, protected []digest.Digest) *Plan {
	p := &Plan{nodes: make(map[digest.Digest]*node, len(items))}
	for _, it := range items {
		p.nodes[it.Digest] = &node{Item: it, keep: it.Pinned}
	}
	for _, n := range p.nodes {
		for _, r := range n.Refs {
			if c := p.nodes[r]; c != nil {
				c.refs++
			}
		}
	}
	// Marking the pinned and protected items alone keeps their whole
	// trees: a kept item is never removed, so what it references never
	// runs out of references.
	for _, d := range protected {
		if n := p.nodes[d]; n != nil {
			n.keep = true
		}
	}
	for _, n := range p.nodes {
		if n.refs == 0 && !n.keep {
			p.roots = append(p.roots, n)
		}
	}
	// Ties broken by digest, so that a run is repeatable.
	slices.SortFunc(p.roots, func(a, b *node) int {
		if c := a.LastUse.Compare(b.LastUse); c != 0 {
			return c
		}
		return strings.Compare(string(a.Digest), string(b.Digest))
	})
	return p
}

// Evict offers whole images to remove, least recently used first, until
// enough reports true (asked before each image) or no image is left, and
// returns what remove removed. Within an image the root comes first, then
// depth first each item no kept item references any more. remove reports
// whether it removed the item; when it did not, the item stays and so
// does everything it references.
func (p *Plan) Evict(enough func() bool, remove func(Item) bool) (freed int64, removed int) {
	for _, n := range p.roots {
		if enough() {
			break
		}
		f, k := p.removeImage(n, remove)
		freed, removed = freed+f, removed+k
	}
	return freed, removed
}

// removeImage offers n and then whatever only n referenced.
func (p *Plan) removeImage(n *node, remove func(Item) bool) (freed int64, removed int) {
	if n.removed || n.keep || n.refs > 0 || !remove(n.Item) {
		return 0, 0
	}
	n.removed = true
	freed, removed = n.Size, 1
	for _, r := range n.Refs {
		if c := p.nodes[r]; c != nil {
			c.refs--
			f, k := p.removeImage(c, remove)
			freed, removed = freed+f, removed+k
		}
	}
	return freed, removed
}
