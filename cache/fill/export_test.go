package fill

import (
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// WaitFill waits until no fill of d is running (its goroutine has finished).
func (g *Group) WaitFill(t *testing.T, d digest.Digest) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		_, running := g.fills[d]
		g.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fill of %s still running", d)
}

// Plan is plan's ranges as [start, end) pairs.
func Plan(size, first int64, workers int) [][2]int64 {
	var out [][2]int64
	for _, s := range plan(size, first, workers) {
		out = append(out, [2]int64{s.start, s.end})
	}
	return out
}
