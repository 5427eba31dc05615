package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("64MiB, 1MiB,512KiB")
	if want := []int64{64 << 20, 1 << 20, 512 << 10}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "64MiB,,1MiB", "64", "64MiB,0MiB", "64MiB,lots"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	if mibList(wanLayersFull) != "64, 1, 32, 2, 16, 4, 48, 8, 24, 1, 12, 40" {
		t.Errorf("the full WAN image is %s MiB", mibList(wanLayersFull))
	}
}

// wanRun is a harness holding the figures of a run with the WAN scenarios
// (and, with plain, the plain link's cold pulls): wharf within every WAN
// target but the 8-client one, distribution behind.
func wanRun(plain bool) *harness {
	h := &harness{p: scales["full"]}
	h.run.WANBytes = 100 << 20
	for round := 1; round <= 3; round++ {
		h.add("wan-cold", "direct", round, "seconds", 4)
		h.add("wan-cold", "wharf", round, "seconds", 2)        // 0.50 ×
		h.add("wan-cold", "distribution", round, "seconds", 5) // 1.25 ×
		h.add("wan-cold8", "wharf", round, "seconds", 3.2)     // 0.80 ×: not met
		h.add("wan-cold8", "distribution", round, "seconds", 6)
		h.add("wan-cold", "wharf", round, "upstream", 101<<20)
		h.add("wan-cold", "distribution", round, "upstream", 100<<20)
		h.add("wan-cold8", "wharf", round, "upstream", 101<<20)
		h.add("wan-cold8", "distribution", round, "upstream", 300<<20)
		h.add("wan-warm", "wharf", round, "upstream_requests", 0)
		h.add("wan-warm", "wharf", round, "seconds", 1)
		h.add("wan-warm", "distribution", round, "seconds", 1.5)
		h.add("wan-warm", "distribution", round, "upstream", 2048)
		if plain {
			h.add("cold", "direct", round, "seconds", 2)
			h.add("cold", "wharf", round, "seconds", 2.06) // 1.03 ×
			h.add("cold8", "wharf", round, "seconds", 2.2) // 1.10 ×: not met
		}
	}
	return h
}

func TestWANTargets(t *testing.T) {
	type row struct {
		measured float64
		met      bool
	}
	var got []row
	for _, ts := range wanRun(true).wanTargets() {
		got = append(got, row{ts.measured, ts.met()})
	}
	want := []row{{0.5, true}, {0.8, false}, {1.01, true}, {1.01, true}, {0, true}, {1.03, true}, {1.1, false}}
	if len(got) != len(want) {
		t.Fatalf("%d targets, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if d := got[i].measured - want[i].measured; d > 0.001 || d < -0.001 || got[i].met != want[i].met {
			t.Errorf("target %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Under --only wan the plain link is not measured: its rows are left
	// out, not failed on zeros.
	if n := len(wanRun(false).wanTargets()); n != 5 {
		t.Errorf("%d targets without the plain link's figures, want the 5 WAN ones", n)
	}
}

func TestWANReport(t *testing.T) {
	var b strings.Builder
	wanRun(true).wanReport(&b)
	out := b.String()
	for _, want := range []string{
		"## WAN: an upstream 50ms away, 25 MiB/s per connection",
		"12 layers of 64, 1, 32, 2, 16, 4, 48, 8, 24, 1, 12, 40 MiB",
		"| WAN: cold pull through wharf ÷ direct pull — distribution: 1.25 × | 0.50 × | ≤ 0.60 × | MET |",
		"| WAN: 8 clients on the same cold image through wharf ÷ one direct pull — distribution: 1.50 × | 0.80 × | ≤ 0.70 × | **NOT MET** |",
		"upstream requests it caused (prefetch included) — distribution fetched 2.0 KiB from the upstream for the same pull | 0 requests | ≤ 0 requests | MET |",
		"| No regression, plain link: 8 clients on the same cold image through wharf ÷ one direct pull | 1.10 × | ≤ 1.05 × | **NOT MET** |",
		"| Cold pull, 1 client | 4.00 s | 2.00 s | 5.00 s | 0.50 | 1.25 | 101 MiB (1.01 ×) | 100 MiB (1.00 ×) |",
		"| Cold pull, 8 clients at once (÷ one direct pull) | (4.00 s) | 3.20 s | 6.00 s | 0.80 | 1.50 | 101 MiB (1.01 ×) | 300 MiB (3.00 ×) |",
		"wharf sent 0 upstream requests",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the WAN section lacks %q:\n%s", want, out)
		}
	}
	var off strings.Builder
	r := wanRun(true)
	r.p.WAN = false
	r.wanReport(&off)
	if !strings.Contains(off.String(), "Not measured in this run (BENCH_WAN=0)") || strings.Contains(off.String(), "| Target |") {
		t.Errorf("with the WAN scenarios off, the section says so and has no table:\n%s", off.String())
	}
}
