package upstreamtest

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// FaultKind is one way to misbehave, named for the counts: Fault returns
// what to do to a request chosen to suffer it.
type FaultKind struct {
	Name  string
	Fault func(*http.Request) Fault
}

// RandomFaults misbehaves on a fraction of requests, each time in one of
// its kinds picked at random, for soak tests. Its decisions come from one
// seeded stream, so a seed gives the same sequence of decisions in the
// order requests arrive (concurrent requests arrive in no fixed order).
// Give its Fault method to Faulty.SetFault.
type RandomFaults struct {
	rate  float64
	kinds []FaultKind

	mu       sync.Mutex
	rng      *rand.Rand
	requests int
	injected map[string]int
}

// NewRandomFaults misbehaves on rate (0..1) of the requests, in one of
// kinds chosen uniformly.
func NewRandomFaults(seed uint64, rate float64, kinds []FaultKind) *RandomFaults {
	return &RandomFaults{rate: rate, kinds: kinds, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[string]int{}}
}

// Fault decides r's fault.
func (rf *RandomFaults) Fault(r *http.Request) Fault {
	rf.mu.Lock()
	rf.requests++
	hit := len(rf.kinds) > 0 && rf.rng.Float64() < rf.rate
	var k FaultKind
	if hit {
		k = rf.kinds[rf.rng.IntN(len(rf.kinds))]
		rf.injected[k.Name]++
	}
	rf.mu.Unlock()
	if !hit {
		return Fault{}
	}
	return k.Fault(r)
}

// Counts returns how many requests were seen and how many suffered each
// kind of fault.
func (rf *RandomFaults) Counts() (requests int, injected map[string]int) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	out := make(map[string]int, len(rf.injected))
	for k, n := range rf.injected {
		out[k] = n
	}
	return rf.requests, out
}

// UpstreamFaults are the six ways an upstream misbehaves in a storm:
//
//   - reset: the connection closed without a response;
//   - 503: Service Unavailable with a v2 error body;
//   - 429: Too Many Requests with Retry-After: 1;
//   - stall: a blob body that stops after 512 bytes for stall (make it
//     longer than the client's stall timeout), or, for a request without
//     a body worth stalling, headers held back for headerDelay (make it
//     longer than the client's header timeout);
//   - truncated: the body cut after 200 bytes;
//   - wrong bytes: the body's first byte flipped, its length kept.
//
// A HEAD has no body: the body faults pass it untouched.
func UpstreamFaults(stall, headerDelay time.Duration) []FaultKind {
	return []FaultKind{
		{"reset", func(*http.Request) Fault { return Fault{Reset: true} }},
		{"503", func(*http.Request) Fault { return Fault{Status: http.StatusServiceUnavailable} }},
		{"429", func(*http.Request) Fault { return Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"} }},
		{"stall", func(r *http.Request) Fault {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				return Fault{Stall: stall, StallAfter: 512}
			}
			return Fault{Delay: headerDelay}
		}},
		{"truncated", func(*http.Request) Fault { return Fault{TruncateAfter: 200} }},
		{"wrong bytes", func(*http.Request) Fault { return Fault{Corrupt: true} }},
	}
}
