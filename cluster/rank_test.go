package cluster_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wharf-mirror/wharf/cluster"
)

// members returns n members named like pods of a headless Service.
func members(n int) []cluster.Member {
	ms := make([]cluster.Member, n)
	for i := range ms {
		ms[i] = cluster.Member{Addr: fmt.Sprintf("10.0.0.%d:5001", i+1), Up: true}
	}
	return ms
}

// keys returns n keys shaped like the digests the cache will rank.
func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("sha256:%x", sha256.Sum256(fmt.Append(nil, i)))
	}
	return ks
}

func addrs(ms []cluster.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Addr
	}
	return out
}

// TestRankIsTheSameWhateverTheOrderOfMembers: replicas list their members
// in whatever order DNS or the config gave; the ranking must not care.
func TestRankIsTheSameWhateverTheOrderOfMembers(t *testing.T) {
	ms := members(5)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range keys(1000) {
		want := addrs(cluster.RankOf(ms, k))
		shuffled := slices.Clone(ms)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := addrs(cluster.RankOf(shuffled, k)); !slices.Equal(got, want) {
			t.Fatalf("key %s: rank %v from one order, %v from another", k, want, got)
		}
		if o := cluster.OwnerOf(shuffled, k); o.Addr != want[0] {
			t.Fatalf("key %s: owner %s, rank first %s", k, o.Addr, want[0])
		}
	}
}

// TestRankIsStable pins the hash: replicas of different builds must rank
// alike, so a change of the weight function is a breaking change that
// this test makes visible. The order was computed outside Go, from the
// definition: the weights, the first 8 bytes of sha256("<member>\x00
// sha256:0000") read big-endian, are 11743056635851803267 (.3),
// 11123122068637570443 (.1) and 6754902590971190994 (.2).
func TestRankIsStable(t *testing.T) {
	got := addrs(cluster.RankOf(members(3), "sha256:0000"))
	want := []string{"10.0.0.3:5001", "10.0.0.1:5001", "10.0.0.2:5001"}
	if !slices.Equal(got, want) {
		t.Fatalf("rank of sha256:0000 = %v, want %v (was the weight function changed?)", got, want)
	}
}

// TestRemovingMemberMovesOnlyItsKeys: when a member leaves, a key it did
// not own keeps its owner, and a key it owned goes to its second.
func TestRemovingMemberMovesOnlyItsKeys(t *testing.T) {
	ks := keys(10_000)
	for _, n := range []int{3, 5} {
		for gone := range n {
			t.Run(fmt.Sprintf("%d members, remove %d", n, gone), func(t *testing.T) {
				before := members(n)
				after := slices.Delete(slices.Clone(before), gone, gone+1)
				moved := 0
				for _, k := range ks {
					rb := cluster.RankOf(before, k)
					oa := cluster.OwnerOf(after, k)
					switch {
					case rb[0].Addr != before[gone].Addr && oa.Addr != rb[0].Addr:
						t.Fatalf("key %s moved from %s to %s, though %s left", k, rb[0].Addr, oa.Addr, before[gone].Addr)
					case rb[0].Addr == before[gone].Addr:
						moved++
						if oa.Addr != rb[1].Addr {
							t.Fatalf("key %s of the leaving member went to %s, not its second %s", k, oa.Addr, rb[1].Addr)
						}
					}
				}
				if moved == 0 {
					t.Fatalf("the leaving member owned no key of %d", len(ks))
				}
			})
		}
	}
}

// TestJoiningMemberTakesOnlyKeys: a member that joins takes keys and
// moves no key between the others.
func TestJoiningMemberTakesOnlyKeys(t *testing.T) {
	before := members(4)
	after := append(slices.Clone(before), cluster.Member{Addr: "10.0.0.99:5001", Up: true})
	taken := 0
	for _, k := range keys(10_000) {
		ob, oa := cluster.OwnerOf(before, k), cluster.OwnerOf(after, k)
		if oa.Addr == "10.0.0.99:5001" {
			taken++
			continue
		}
		if ob.Addr != oa.Addr {
			t.Fatalf("key %s moved from %s to %s when another member joined", k, ob.Addr, oa.Addr)
		}
	}
	if taken == 0 {
		t.Fatal("the joining member took no key")
	}
}

// TestOwnershipIsBalanced: each member owns its share of keys, ±15%.
func TestOwnershipIsBalanced(t *testing.T) {
	ks := keys(30_000)
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprint(n, " members"), func(t *testing.T) {
			ms := members(n)
			owned := map[string]int{}
			for _, k := range ks {
				owned[cluster.OwnerOf(ms, k).Addr]++
			}
			share := float64(len(ks)) / float64(n)
			for _, m := range ms {
				if c := float64(owned[m.Addr]); c < 0.85*share || c > 1.15*share {
					t.Errorf("%s owns %.0f keys; its share is %.0f ±15%%", m.Addr, c, share)
				}
			}
		})
	}
}

// BenchmarkRank ranks digests over five members: the cost a peer lookup
// adds to a miss.
func BenchmarkRank(b *testing.B) {
	ms, ks := members(5), keys(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		cluster.RankOf(ms, ks[i%len(ks)])
		i++
	}
}

// BenchmarkOwner is the same for the owner alone.
func BenchmarkOwner(b *testing.B) {
	ms, ks := members(5), keys(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		cluster.OwnerOf(ms, ks[i%len(ks)])
		i++
	}
}
