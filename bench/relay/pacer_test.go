package main

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newCounter(v int64) *atomic.Int64 {
	var r atomic.Int64
	r.Store(v)
	return &r
}

// The rate is shared: four connections moving 4 MiB each through a
// 64 MiB/s link take about a quarter of a second together, not each.
func TestPacerSharesTheRate(t *testing.T) {
	p := newPacer(newCounter(64 << 20))
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 64 {
				p.wait(64 << 10)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 220*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("16 MiB at 64 MiB/s took %v, want about 250ms", d)
	}
}

func TestPacerUnlimited(t *testing.T) {
	p := newPacer(newCounter(0))
	start := time.Now()
	for range 1000 {
		p.wait(1 << 20)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("an unlimited pacer waited %v", d)
	}
}

// A change of the rate applies to the next chunk: the control API turns a
// link's cap off (or on) under connections already open.
func TestPacerRateChangesUnderway(t *testing.T) {
	r := newCounter(1 << 20)
	p := newPacer(r)
	p.wait(1 << 20) // the first chunk passes at once and books a second of the link
	r.Store(0)
	start := time.Now()
	p.wait(1 << 20)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("after the rate went to unlimited, a chunk waited %v", d)
	}
}
