package bench

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// maxSamples bounds the latencies one client keeps per request kind. Past
// it, reservoir sampling keeps a uniform sample of everything seen, so a
// long run at tens of thousands of requests per second stays in bounded
// memory and its percentiles stay unbiased (each kept sample then stands for
// seen/len of them when clients are merged).
const maxSamples = 1 << 17

// recorder is one client's record of its requests. Only that client's
// goroutines (its few parallel blob transfers) touch it, so its lock is
// hardly ever contended; the driver merges recorders once the clients are
// done.
type recorder struct {
	mu      sync.Mutex
	latency map[string]*samples
	errors  map[string]int
	example map[string]string // first message of each error kind
	rng     *rand.Rand
}

func newRecorder(seed uint64) *recorder {
	return &recorder{
		latency: make(map[string]*samples),
		errors:  make(map[string]int),
		example: make(map[string]string),
		rng:     rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc908)),
	}
}

// observe records one request of kind that took d.
func (r *recorder) observe(kind string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.latency[kind]
	if s == nil {
		s = &samples{}
		r.latency[kind] = s
	}
	s.add(d, r.rng)
}

// fail records a failed request or operation.
func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := errorKind(err)
	if r.errors[k] == 0 {
		r.example[k] = err.Error()
	}
	r.errors[k]++
}

// samples is a reservoir of latencies and the number of them seen.
type samples struct {
	kept []time.Duration
	seen int64
}

func (s *samples) add(d time.Duration, rng *rand.Rand) {
	s.seen++
	if len(s.kept) < maxSamples {
		s.kept = append(s.kept, d)
		return
	}
	if i := rng.Int64N(s.seen); i < maxSamples {
		s.kept[i] = d
	}
}

// weighted is a latency standing for weight requests.
type weighted struct {
	d      time.Duration
	weight float64
}

// Percentiles summarises the latencies of one request kind.
type Percentiles struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"-"`
	P90   time.Duration `json:"-"`
	P99   time.Duration `json:"-"`
	Max   time.Duration `json:"-"`
	// The same in milliseconds, for --json readers.
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// summarize merges the reservoirs of several clients for one kind and
// computes nearest-rank percentiles: the p-th percentile is the smallest
// latency at or below which at least p of the requests fall.
func summarize(parts []*samples) Percentiles {
	var all []weighted
	var seen int64
	var total float64
	for _, s := range parts {
		if s == nil || len(s.kept) == 0 {
			continue
		}
		seen += s.seen
		w := float64(s.seen) / float64(len(s.kept))
		for _, d := range s.kept {
			all = append(all, weighted{d, w})
		}
		total += float64(s.seen)
	}
	p := Percentiles{Count: seen}
	if len(all) == 0 {
		return p
	}
	slices.SortFunc(all, func(a, b weighted) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return 0
	})
	p.P50 = rank(all, total, 0.50)
	p.P90 = rank(all, total, 0.90)
	p.P99 = rank(all, total, 0.99)
	p.Max = all[len(all)-1].d
	p.P50ms, p.P90ms, p.P99ms, p.MaxMs = ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max)
	return p
}

func rank(sorted []weighted, total, q float64) time.Duration {
	need := q * total
	var cum float64
	for _, w := range sorted {
		cum += w.weight
		// A small tolerance, so that float sums of weights reach exactly
		// q*total when they should.
		if cum >= need-1e-9*total {
			return w.d
		}
	}
	return sorted[len(sorted)-1].d
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
