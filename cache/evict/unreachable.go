package evict

import (
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Unreachable returns the items that neither roots (the digests tags name)
// nor pinned or protected content reaches through references: what a
// garbage collection removes. Referrers come before what they reference,
// so that a collection cut short never leaves a manifest pointing at
// removed content; the order is otherwise by digest, so it is repeatable.
func (p *Plan) Unreachable(roots []digest.Digest) []Item {
	seen := make(map[digest.Digest]bool, len(p.nodes))
	var mark func(d digest.Digest)
	mark = func(d digest.Digest) {
		if seen[d] {
			return
		}
		seen[d] = true
		if n := p.nodes[d]; n != nil {
			for _, r := range n.Refs {
				mark(r)
			}
		}
	}
	for _, d := range roots {
		mark(d)
	}
	for d, n := range p.nodes {
		if n.keep {
			mark(d)
		}
	}

	// Depth first in post-order, then reversed: every item lands before
	// what it references (cycles aside, which have no such order).
	var out []Item
	var visit func(n *node)
	visit = func(n *node) {
		if seen[n.Digest] {
			return
		}
		seen[n.Digest] = true
		for _, r := range n.Refs {
			if c := p.nodes[r]; c != nil {
				visit(c)
			}
		}
		out = append(out, n.Item)
	}
	all := make([]*node, 0, len(p.nodes))
	for _, n := range p.nodes {
		all = append(all, n)
	}
	slices.SortFunc(all, func(a, b *node) int { return strings.Compare(string(b.Digest), string(a.Digest)) })
	for _, n := range all {
		visit(n)
	}
	slices.Reverse(out)
	return out
}
