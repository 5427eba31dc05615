package transport

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharf-mirror/wharf/metrics"
)

// LimitedFor is how long an upstream counts as rate-limiting after a 429
// that named no Retry-After, or after an answer saying
// ratelimit-remaining: 0 (Docker Hub names its window's length, not when
// the budget comes back).
const LimitedFor = time.Minute

// MaxLimitedFor caps how long one 429 holds work back, whatever its
// Retry-After: a registry's hours-long Retry-After (or a wrong one) would
// otherwise stop prefetching for as long, though the next success may
// show the limit long gone.
const MaxLimitedFor = 5 * time.Minute

// RateLimit reads Docker Hub's pull budget from every response and
// publishes it with metrics.RateLimit. Docker Hub sends, for example,
//
//	ratelimit-limit: 100;w=21600
//	ratelimit-remaining: 76;w=21600
//
// (a count and its window in seconds). Only the counts are kept: the window
// is fixed per account and the gauges are for alerting before the budget
// runs out. Responses without both headers leave the gauges alone.
//
// It also remembers whether the upstream is rate-limiting wharf now (see
// Limited), for work that can wait, such as prefetching, to hold back
// while clients' own requests still go out. Sitting below retry, it sees
// every attempt's 429, retried or not. Only the registry's own host
// counts: a redirect hop's answer (a CDN's 429, its own ratelimit
// headers) says nothing of the registry's budget and is let through
// unread.
type RateLimit struct {
	next    http.RoundTripper
	origin  string // scheme://host of the registry
	name    string
	metrics *metrics.Metrics
	now     func() time.Time // time.Now; tests set it

	mu         sync.Mutex
	until429   map[string]time.Time // by request kind: a 429's Retry-After (LimitedFor without one, MaxLimitedFor at most)
	untilEmpty time.Time            // LimitedFor from the last "ratelimit-remaining: 0"; a later budget clears it
}

// NewRateLimit wraps next for the registry at base (its scheme and host
// are what matter). m may be nil.
func NewRateLimit(next http.RoundTripper, base *url.URL, name string, m *metrics.Metrics) (*RateLimit, error) {
	if next == nil {
		return nil, errors.New("transport: NewRateLimit: nil next transport")
	}
	if base == nil || base.Host == "" {
		return nil, errors.New("transport: NewRateLimit: base URL without host")
	}
	return &RateLimit{next: next, origin: origin(base), name: name, metrics: m, now: time.Now,
		until429: map[string]time.Time{}}, nil
}

// RoundTrip implements http.RoundTripper.
func (rl *RateLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rl.next.RoundTrip(req)
	if resp != nil && origin(req.URL) == rl.origin {
		rl.observe(req, resp)
	}
	return resp, err
}

// observe publishes the budget a response announced and notes a 429 or
// an empty budget, or clears them when the limit is shown to be over:
// budget announced, or a GET of the kind that got the 429 succeeding
// (not a HEAD, which Docker Hub serves past an empty budget, nor a
// manifest for a blob's 429, which may have limits of its own).
func (rl *RateLimit) observe(req *http.Request, resp *http.Response) {
	limit, okL := ParseRateLimit(resp.Header.Get("Ratelimit-Limit"))
	remaining, okR := ParseRateLimit(resp.Header.Get("Ratelimit-Remaining"))
	if okL && okR {
		rl.metrics.RateLimit(rl.name, limit, remaining)
	}
	kind := KindOf(req)
	success := resp.StatusCode/100 == 2 && req.Method == http.MethodGet
	if !okR && !success && resp.StatusCode != http.StatusTooManyRequests {
		return
	}
	now := rl.now()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	switch {
	case okR && remaining == 0:
		rl.untilEmpty = now.Add(LimitedFor)
	case okR:
		clear(rl.until429)
		rl.untilEmpty = time.Time{}
	case success:
		delete(rl.until429, kind)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		wait := LimitedFor
		if after, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			wait = min(after, MaxLimitedFor)
		}
		if until := now.Add(wait); until.After(rl.until429[kind]) {
			rl.until429[kind] = until
		}
	}
}

// Limited returns until when the upstream counts as rate-limiting: a 429
// within its Retry-After (LimitedFor without one, MaxLimitedFor at most)
// and no successful GET of its kind since, or an empty budget announced
// within the last LimitedFor and not refilled since. The zero time means
// it is not limiting now.
func (rl *RateLimit) Limited() time.Time {
	now := rl.now()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	until := rl.untilEmpty
	for _, u := range rl.until429 {
		if u.After(until) {
			until = u
		}
	}
	if !until.After(now) {
		return time.Time{}
	}
	return until
}

// ParseRateLimit returns the count in a ratelimit header value such as
// "100;w=21600" or "100", and whether there was one.
func ParseRateLimit(v string) (float64, bool) {
	count, _, _ := strings.Cut(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(count), 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(n), true
}
