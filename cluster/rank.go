package cluster

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// Rendezvous (highest random weight) hashing: every member gets a weight
// for a key, the 64-bit hash of (member, key), and the members ranked by
// weight, highest first, are the key's owner and its successors. Each
// replica computes the ranking alone, from the members it sees live, with
// no shared table to agree on.
//
// Why rendezvous and not a ring of virtual nodes: a key's weight for a
// member never depends on the other members, so when a member leaves only
// the keys it ranked first move (each to its own second, which is already
// known: the next in Rank), and when a member joins only the keys it now
// ranks first move, to it. Every other key keeps its owner, so a replica
// coming or going costs the cluster only that replica's share of fills.
// The balance is that of a uniform hash, with no virtual nodes to tune;
// the cost, one hash per member per key, is small at cluster sizes (see
// BenchmarkRank).
//
// The hash must be the same in every process of every version, so it is
// sha256 (its first 8 bytes, big-endian) and not hash/maphash, whose seed
// is per process. The member's name and the key are separated by a NUL,
// which neither can hold, so no two pairs hash the same input.

// weight is the rendezvous weight of member for key.
func weight(buf []byte, member, key string) uint64 {
	buf = append(buf[:0], member...)
	buf = append(buf, 0)
	buf = append(buf, key...)
	sum := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(sum[:8])
}

// rank orders members by their weight for key, highest first; ties (as
// good as impossible with 64 bits) go to the smaller address, so that the
// order is total and the same on every replica whatever the input order.
func rank(members []Member, key string) []Member {
	type weighted struct {
		m Member
		w uint64
	}
	var buf [128]byte
	ws := make([]weighted, len(members))
	for i, m := range members {
		ws[i] = weighted{m, weight(buf[:0], m.Addr, key)}
	}
	slices.SortFunc(ws, func(a, b weighted) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.m.Addr, b.m.Addr)
	})
	out := make([]Member, len(ws))
	for i, w := range ws {
		out[i] = w.m
	}
	return out
}

// owner is rank(members, key)[0] without sorting: one pass keeping the
// highest weight. members must not be empty.
func owner(members []Member, key string) Member {
	var buf [128]byte
	best, bestW := members[0], weight(buf[:0], members[0].Addr, key)
	for _, m := range members[1:] {
		w := weight(buf[:0], m.Addr, key)
		if w > bestW || (w == bestW && m.Addr < best.Addr) {
			best, bestW = m, w
		}
	}
	return best
}
