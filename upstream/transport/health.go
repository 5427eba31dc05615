package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
)

// ErrDown is returned (wrapped in a *DownError) for a request that was not
// sent because its upstream is marked down.
var ErrDown = errors.New("upstream marked down")

// DownError says since when an upstream is down and when it will next be
// probed, so that a caller can tell its own client when to come back.
type DownError struct {
	Since     time.Time // when it was marked down
	NextProbe time.Time // when the background probe next asks it
	Last      string    // the failure that marked it down
}

func (e *DownError) Error() string {
	return fmt.Sprintf("%v since %s (%s)", ErrDown, e.Since.UTC().Format(time.RFC3339), e.Last)
}

// Unwrap returns ErrDown.
func (e *DownError) Unwrap() error { return ErrDown }

// Defaults for HealthOptions' zero values.
const (
	DefaultDownAfter  = 3
	DefaultStallAfter = 3 * time.Second
	DefaultProbeMin   = time.Second
	DefaultProbeMax   = 30 * time.Second
)

// HealthOptions configures Health.
type HealthOptions struct {
	Name string // upstream label for the gauge and logs
	// DownAfter is the number of consecutive failed attempts that mark the
	// upstream down. Default 3.
	DownAfter int
	// StallAfter is how long an attempt may wait for response headers
	// before it counts as a failure, and again for each StallAfter more
	// (headers arriving later count as a success). It is what makes a hung
	// upstream known within seconds, even by one request alone, while the
	// header timeout may be far longer. Default 3s.
	StallAfter time.Duration
	// Probe is where the background probe sends GET <ProbeURL>, under
	// StallAfter: a transport below retry and auth, since any answer
	// under 500 (a 401 included) proves the upstream is serving.
	Probe    http.RoundTripper
	ProbeURL *url.URL
	// ProbeMin is the first wait before a probe, doubled after each failed
	// probe up to ProbeMax. Defaults 1s and 30s.
	ProbeMin, ProbeMax time.Duration
	Metrics            *metrics.Metrics
	Logger             logrus.FieldLogger // transitions are logged here, once each
}

// Health is a circuit breaker per upstream, fed by every attempt that
// passes through it: DownAfter consecutive failures (a connection error, a
// 5xx, StallAfter without headers) mark the upstream down; while it is
// down, attempts fail at once with a *DownError and one owned goroutine
// probes it with backoff, marking it up on the first answer. A success of
// any attempt in flight marks it up as well. It sits just inside Retry,
// which stops on ErrDown, so a failing upstream stops costing retries as
// soon as it is known to be down.
type Health struct {
	next http.RoundTripper
	opts HealthOptions
	log  logrus.FieldLogger

	mu        sync.Mutex
	failures  int
	down      bool
	since     time.Time // marked down; or up again, once it was down
	nextProbe time.Time
	last      string // the last failure, in words (Words)
	lastAt    time.Time
	closed    bool
	// downCtx ends when the upstream is marked down, which cuts short
	// the attempts still waiting for headers (a new one for each up period).
	downCtx  context.Context
	markDown context.CancelFunc
	ctx      context.Context // ends with Close: the probe's stop path
	cancel   context.CancelFunc
	probing  sync.WaitGroup
	// prober: the probe goroutine is running. One per Health at most: an
	// upstream marked up by a request and down again while the probe
	// sleeps keeps that probe rather than starting another.
	prober bool
	probes int // probe goroutines started, for tests
}

// NewHealth wraps next. The upstream starts up.
func NewHealth(next http.RoundTripper, opts HealthOptions) (*Health, error) {
	if next == nil || opts.Probe == nil || opts.ProbeURL == nil {
		return nil, errors.New("transport: NewHealth: nil next transport, probe transport or probe URL")
	}
	if opts.DownAfter <= 0 {
		opts.DownAfter = DefaultDownAfter
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = DefaultStallAfter
	}
	if opts.ProbeMin <= 0 {
		opts.ProbeMin = DefaultProbeMin
	}
	if opts.ProbeMax < opts.ProbeMin {
		opts.ProbeMax = max(DefaultProbeMax, opts.ProbeMin)
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	opts.Metrics.SetUpstreamUp(opts.Name, true)
	h := &Health{next: next, opts: opts, log: log}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.downCtx, h.markDown = context.WithCancel(context.Background())
	return h, nil
}

// RoundTrip implements http.RoundTripper.
func (h *Health) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	if h.down {
		defer h.mu.Unlock()
		return nil, h.downErrorLocked()
	}
	downCtx := h.downCtx
	h.mu.Unlock()
	watch := h.watchStall()
	// An attempt still waiting for headers when the upstream is marked
	// down (by its own stall or by others') stops waiting: it would
	// otherwise hold its caller for the whole header timeout. Once headers
	// have come, a body streams on regardless.
	ctx, cancel := context.WithCancel(req.Context())
	abort := context.AfterFunc(downCtx, cancel)
	resp, err := h.next.RoundTrip(req.WithContext(ctx))
	stalled := watch.stop() // a stall was counted (or is being)
	if !abort() {
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		h.mu.Lock()
		defer h.mu.Unlock()
		return nil, h.downErrorLocked()
	}
	if err != nil {
		cancel()
	} else {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	}
	switch {
	case err == nil && resp.StatusCode < 500:
		h.succeed()
	case stalled:
		// Already counted as a failure: only an answer changes anything now.
	case err == nil:
		why := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		h.fail(why, why)
	case errors.Is(req.Context().Err(), context.Canceled),
		errors.Is(err, ErrTargetRefused), errors.Is(err, ErrRealmRefused):
		// The caller gave up, or wharf refused where the upstream pointed:
		// neither says whether the upstream is serving.
	default:
		h.fail(Words(err), err.Error())
	}
	return resp, err
}

// stallWatch counts a failure for each StallAfter an attempt waits for
// response headers, not only the first: a lone request to an upstream that
// accepts and never answers marks it down after DownAfter × StallAfter
// (and is then cut short by the down state), rather than one failure per
// header timeout, which took three timeouts of 30s with serve's defaults.
type stallWatch struct {
	h       *Health
	mu      sync.Mutex
	t       *time.Timer
	waited  time.Duration
	stopped bool
}

func (h *Health) watchStall() *stallWatch {
	w := &stallWatch{h: h}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(h.opts.StallAfter, w.tick)
	return w
}

func (w *stallWatch) tick() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.waited += w.h.opts.StallAfter
	why := fmt.Sprintf("no response headers after %v", w.waited)
	w.mu.Unlock()
	w.h.fail(why, why) // outside the watch's lock: fail may cancel the attempt
	w.mu.Lock()
	if !w.stopped {
		w.t.Reset(w.h.opts.StallAfter)
	}
	w.mu.Unlock()
}

// stop ends the watch; it reports whether any stall was counted.
func (w *stallWatch) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
	return w.waited > 0
}

// Down returns a *DownError while the upstream is marked down, else nil.
func (h *Health) Down() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return nil
	}
	return h.downErrorLocked()
}

// HealthState is a snapshot of the breaker, for a status page.
type HealthState struct {
	Down      bool
	Since     time.Time // when it was marked down, or up again; zero: up since start
	NextProbe time.Time // while down: when the probe next asks it
	Last      string    // the last failed attempt or probe, in words; "" if none
	LastAt    time.Time // when that was
}

// State says whether the upstream is down, since when, and its last
// failure (kept after it is up again: an operator asks "what was it?").
func (h *Health) State() HealthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := HealthState{Down: h.down, Since: h.since, Last: h.last, LastAt: h.lastAt}
	if h.down {
		st.NextProbe = h.nextProbe
	}
	return st
}

// downErrorLocked describes the current (or just ended) down period.
func (h *Health) downErrorLocked() *DownError {
	return &DownError{Since: h.since, NextProbe: h.nextProbe, Last: h.last}
}

// Close stops the probe and waits for it. Afterwards the upstream is
// never marked down again (nothing would probe it back up).
func (h *Health) Close() {
	h.mu.Lock()
	h.closed = true
	h.cancel()
	if h.down {
		h.down = false
		h.downCtx, h.markDown = context.WithCancel(context.Background())
	}
	h.mu.Unlock()
	h.probing.Wait()
}

// fail counts a failed attempt: why in words (kept for Down and State),
// raw the full error (for the log).
func (h *Health) fail(why, raw string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	h.last, h.lastAt = why, time.Now()
	if h.down || h.closed || h.failures < h.opts.DownAfter {
		return
	}
	h.down, h.since = true, time.Now()
	h.markDown()
	h.nextProbe = h.since.Add(h.opts.ProbeMin)
	h.opts.Metrics.SetUpstreamUp(h.opts.Name, false)
	h.log.WithFields(logrus.Fields{"upstream": h.opts.Name, "failures": h.failures, "error": raw}).
		Warn("upstream marked down; cached content is served without asking it, misses fail fast until a probe succeeds")
	if !h.prober {
		h.prober = true
		h.probes++
		h.probing.Add(1)
		go h.probe()
	}
}

func (h *Health) succeed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.succeedLocked()
}

func (h *Health) succeedLocked() {
	h.failures = 0
	if !h.down {
		return
	}
	h.down = false
	h.downCtx, h.markDown = context.WithCancel(context.Background())
	h.opts.Metrics.SetUpstreamUp(h.opts.Name, true)
	downFor := time.Since(h.since)
	h.since = time.Now()
	h.log.WithFields(logrus.Fields{"upstream": h.opts.Name, "down_for": downFor.Round(time.Millisecond)}).
		Warn("upstream is up again")
}

// probe asks the upstream until it answers or Health closes, waiting
// ProbeMin, then twice as long each time up to ProbeMax. It is the one
// goroutine Health starts, and it runs while the upstream is down: if a
// request marks it up and failures mark it down again while the probe
// sleeps, that probe goes on rather than a second one starting.
func (h *Health) probe() {
	defer h.probing.Done()
	wait := h.opts.ProbeMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-h.ctx.Done():
			t.Stop()
			h.mu.Lock()
			h.prober = false
			h.mu.Unlock()
			return
		case <-t.C:
		}
		ok, why := h.probeOnce()
		wait = min(wait*2, h.opts.ProbeMax)
		h.mu.Lock()
		if ok {
			h.succeedLocked()
		} else {
			h.last, h.lastAt, h.nextProbe = "probe: "+why, time.Now(), time.Now().Add(wait)
		}
		if !h.down { // up (this probe, a request) or closed: stop, in the same lock fail checks prober under
			h.prober = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// probeOnce sends GET ProbeURL under StallAfter.
func (h *Health) probeOnce() (bool, string) {
	ctx, cancel := context.WithTimeout(WithKind(h.ctx, "probe"), h.opts.StallAfter)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.opts.ProbeURL.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := h.opts.Probe.RoundTrip(req)
	if err != nil {
		return false, Words(err)
	}
	drain(resp.Body)
	if resp.StatusCode >= 500 {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return true, ""
}
