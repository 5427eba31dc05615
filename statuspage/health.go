package statuspage

import (
	"time"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Health is one upstream's circuit breaker as the page shows it, and
// whether the upstream counts as near.
type Health struct {
	Down      bool
	Since     time.Time // marked down, or up again; zero: up since start
	NextProbe time.Time // while down
	LastError string    // the last failure in words; "" if none
	LastAt    time.Time
	Near      bool // answers within upstream.farLatency: no prefetch, no segmented fetch
}

// Breaker is an upstream that reports its circuit breaker and its
// distance: an *upstream.Client.
type Breaker interface {
	Name() string
	Health() transport.HealthState
	Near() bool
}

// BreakersOf is Options.Health for these upstreams' breakers.
func BreakersOf[B Breaker](bs ...B) func(name string) (Health, bool) {
	return func(name string) (Health, bool) {
		for _, b := range bs {
			if b.Name() == name {
				h := b.Health()
				return Health{Down: h.Down, Since: h.Since, NextProbe: h.NextProbe, LastError: h.Last, LastAt: h.LastAt, Near: b.Near()}, true
			}
		}
		return Health{}, false
	}
}

// grade grades an upstream on its recent traffic: down when none of its
// answers was good, degraded when over 5 % of them were bad or an operation
// failed even after retries, ok otherwise, idle without traffic.
func grade(requests, bad, failedOps float64) string {
	switch {
	case requests == 0 && failedOps == 0:
		return "idle"
	case bad >= requests:
		return "down"
	case failedOps > 0 || bad > 0.05*requests:
		return "degraded"
	}
	return "ok"
}
