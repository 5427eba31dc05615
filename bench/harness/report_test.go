package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"200MiB": 200 << 20, "1GiB": 1 << 30, "40M": 40 << 20, "1.5KiB": 1536, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1MiB", "lots"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestMedianAndSpread(t *testing.T) {
	h := &harness{}
	for i, v := range []float64{5, 1, 3, 100} {
		h.add("cold", "wharf", i, "seconds", v)
	}
	h.add("cold", "distribution", 1, "seconds", 7)
	if m := h.med("cold", "wharf", "seconds"); m != 4 {
		t.Errorf("median %v, want 4 (mean of the middle two)", m)
	}
	if m := h.med("cold", "distribution", "seconds"); m != 7 {
		t.Errorf("median %v, want 7", m)
	}
	if _, ok := h.median("warm", "wharf", "seconds"); ok {
		t.Error("a figure never measured has no median")
	}
	if lo, hi, n := h.spread("cold", "wharf", "seconds"); lo != 1 || hi != 100 || n != 4 {
		t.Errorf("spread %v–%v of %d", lo, hi, n)
	}
}

func TestTargetVerdicts(t *testing.T) {
	if !(target{measured: 1.10, limit: 1.10, atMost: true}).met() || (target{measured: 0.89, limit: 0.9}).met() {
		t.Error("bounds are inclusive and directional")
	}
}

func TestRotate(t *testing.T) {
	a, b, c := &server{kind: "a"}, &server{kind: "b"}, &server{kind: "c"}
	for turn, want := range map[int]string{1: "abc", 2: "bca", 3: "cab", 4: "abc"} {
		got := ""
		for _, s := range rotate([]*server{a, b, c}, turn) {
			got += s.kind
		}
		if got != want {
			t.Errorf("turn %d: %s, want %s", turn, got, want)
		}
	}
}
