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

// Plan is plan's count of ranges and range i as a [start, end) pair.
func Plan(size, first int64, workers int) (count int64, span func(i int64) [2]int64) {
	l := plan(size, first, workers)
	return l.count, func(i int64) [2]int64 {
		start, end := l.span(i)
		return [2]int64{start, end}
	}
}
