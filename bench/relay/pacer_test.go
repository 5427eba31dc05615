package main

import (
	"sync"
	"testing"
	"time"
)

// The rate is shared: four connections moving 4 MiB each through a
// 64 MiB/s link take about a quarter of a second together, not each.
func TestPacerSharesTheRate(t *testing.T) {
	p := newPacer(64 << 20)
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
	p := newPacer(0)
	start := time.Now()
	for range 1000 {
		p.wait(1 << 20)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("an unlimited pacer waited %v", d)
	}
}
