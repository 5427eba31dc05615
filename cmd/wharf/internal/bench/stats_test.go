package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentilesNearestRank(t *testing.T) {
	tests := []struct {
		name               string
		in                 []int // milliseconds, in any order
		p50, p90, p99, max int
	}{
		{"one", []int{7}, 7, 7, 7, 7},
		{"two", []int{2, 1}, 1, 2, 2, 2},
		{"ten", []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5, 9, 10, 10},
		{"hundred", seq(100), 50, 90, 99, 100},
		{"thousand", seq(1000), 500, 900, 990, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &samples{}
			rng := rand.New(rand.NewPCG(1, 2))
			for _, v := range rand.New(rand.NewPCG(3, 4)).Perm(len(tt.in)) {
				s.add(time.Duration(tt.in[v])*time.Millisecond, rng)
			}
			p := summarize([]*samples{s})
			got := []time.Duration{p.P50, p.P90, p.P99, p.Max}
			want := []int{tt.p50, tt.p90, tt.p99, tt.max}
			for i := range got {
				if got[i] != time.Duration(want[i])*time.Millisecond {
					t.Errorf("percentile %d: got %v, want %dms", i, got[i], want[i])
				}
			}
			if p.Count != int64(len(tt.in)) {
				t.Errorf("count %d, want %d", p.Count, len(tt.in))
			}
		})
	}
}

func TestPercentilesEmpty(t *testing.T) {
	if p := summarize([]*samples{nil, {}}); p.Count != 0 || p.P99 != 0 {
		t.Errorf("got %+v for no samples", p)
	}
}

// Merging clients must weigh each sample by how many requests it stands
// for: a client that kept a reservoir of a long run outweighs one that kept
// all of a short run.
func TestPercentilesMergeWeighsReservoirs(t *testing.T) {
	fast := &samples{kept: []time.Duration{time.Millisecond}, seen: 99}
	slow := &samples{kept: []time.Duration{time.Second}, seen: 1}
	p := summarize([]*samples{slow, fast})
	if p.Count != 100 || p.P50 != time.Millisecond || p.P90 != time.Millisecond || p.P99 != time.Millisecond || p.Max != time.Second {
		t.Errorf("got %+v, want 100 requests, p50..p99 1ms, max 1s", p)
	}
}

// Past maxSamples the reservoir stays bounded and still represents the
// whole run: a stream whose second half is ten times slower must show it
// at the median's upper side.
func TestReservoirStaysBoundedAndUniform(t *testing.T) {
	s := &samples{}
	rng := rand.New(rand.NewPCG(5, 6))
	n := 3 * maxSamples
	for i := range n {
		d := time.Millisecond
		if i >= n/2 {
			d = 10 * time.Millisecond
		}
		s.add(d, rng)
	}
	if len(s.kept) != maxSamples || s.seen != int64(n) {
		t.Fatalf("kept %d of %d, want %d of %d", len(s.kept), s.seen, maxSamples, n)
	}
	slow := 0
	for _, d := range s.kept {
		if d > time.Millisecond {
			slow++
		}
	}
	if frac := float64(slow) / maxSamples; frac < 0.48 || frac > 0.52 {
		t.Errorf("%.3f of the kept samples are from the slow half, want about 0.5", frac)
	}
	if p := summarize([]*samples{s}); p.P90 != 10*time.Millisecond || p.Count != int64(n) {
		t.Errorf("got %+v", p)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}
