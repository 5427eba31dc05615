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
