package transport

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-mirror/wharf/metrics"
)

// LatencyWindow is how long a time-to-first-byte sample counts in
// Latency.Least: samples fall in windows this long, and the least of the
// current window and the last one is the answer, so a sample is
// forgotten 5 to 10 minutes after it was taken.
const LatencyWindow = 5 * time.Minute

// Latency measures how far away the registry is: for each GET and HEAD to
// its own host, the time from the connection in hand (before a byte of the
// request is written) to the first byte of the answer, a round trip plus
// the registry's own time to answer. Least keeps the smallest over the
// last few minutes, as TCP's min RTT does: a loaded machine or a slow
// answer only ever adds to a sample, so the least is the link's. (Timing
// from "request written" would not do: HTTP/2 reports it after the
// headers have gone, so a writer late to a CPU would shorten a sample.) A
// redirect hop (a CDN) is not sampled: every blob request pays the
// registry's round trip first. Requests with a body are not either: the
// server may answer before the body is written.
type Latency struct {
	next   http.RoundTripper
	origin string           // scheme://host of the registry
	now    func() time.Time // time.Now; tests set it

	mu      sync.Mutex
	started time.Time     // when the current window began
	cur     time.Duration // least of the current window; 0: no sample
	prev    time.Duration // least of the window before; 0: no sample
}

// NewLatency wraps next for the registry at base, and publishes Least
// as name's wharf_upstream_first_byte_seconds on m (which may be nil).
func NewLatency(next http.RoundTripper, base *url.URL, name string, m *metrics.Metrics) (*Latency, error) {
	if next == nil {
		return nil, errors.New("transport: NewLatency: nil next transport")
	}
	if base == nil || base.Host == "" {
		return nil, errors.New("transport: NewLatency: base URL without host")
	}
	l := &Latency{next: next, origin: origin(base), now: time.Now}
	m.TimeUpstream(name, l.Least)
	return l, nil
}

// RoundTrip implements http.RoundTripper.
func (l *Latency) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead || origin(req.URL) != l.origin {
		return l.next.RoundTrip(req)
	}
	// The hooks run on the transport's goroutines: atomics, as
	// nanoseconds since start on the monotonic clock.
	start := time.Now()
	var conn, first atomic.Int64
	trace := &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { conn.Store(int64(time.Since(start))) },
		GotFirstResponseByte: func() { first.Store(int64(time.Since(start))) },
	}
	resp, err := l.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if c, f := conn.Load(), first.Load(); err == nil && c > 0 && f > c {
		l.observe(time.Duration(f - c))
	}
	return resp, err
}

// observe takes one sample.
func (l *Latency) observe(d time.Duration) {
	l.mu.Lock()
	now := l.now()
	switch since := now.Sub(l.started); {
	case since >= 2*LatencyWindow:
		l.prev, l.cur, l.started = 0, 0, now
	case since >= LatencyWindow:
		// Whole windows on, so that a sample never counts longer than the
		// window after its own.
		l.prev, l.cur, l.started = l.cur, 0, l.started.Add(LatencyWindow)
	}
	if l.cur == 0 || d < l.cur {
		l.cur = d
	}
	l.mu.Unlock()
}

// Least is the least time to first byte sampled in the last 5 to 10
// minutes; ok is false when there is none.
func (l *Latency) Least() (least time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch since := l.now().Sub(l.started); {
	case since >= 2*LatencyWindow:
		return 0, false
	case since >= LatencyWindow:
		least = l.cur // the window before it is older than the last one
	default:
		least = l.leastLocked()
	}
	return least, least > 0
}

func (l *Latency) leastLocked() time.Duration {
	switch {
	case l.prev == 0:
		return l.cur
	case l.cur == 0:
		return l.prev
	}
	return min(l.cur, l.prev)
}
