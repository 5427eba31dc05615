package proxy

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// StatusSource is what the status page needs from the store: a cheap size
// and the full picture by repository. Stats walks the whole index, so the
// page calls it at most once per statsTTL however often it is viewed.
type StatusSource interface {
	Usage() (bytes, items int64)
	Stats() (cache.Stats, error)
}

const (
	routeStatus = "status" // GET / (named with the others in routes.go's table)

	statsTTL   = 10 * time.Second
	topRepos   = 10
	healthSpan = 15 * time.Minute
	healthStep = 30 * time.Second
)

// statusPage serves the HTML page at / for people. Everything on it comes
// from the metrics registry (counters since start), the store (what it
// holds), the grouped-errors hook and the upstreams' breakers; it holds no
// counters of its own.
type statusPage struct {
	src       StatusSource                             // may be nil: no holdings section
	gatherer  prometheus.Gatherer                      // may be nil: no traffic sections
	errs      *RecentErrors                            // may be nil: no errors section
	upstreams []string                                 // every configured upstream, listed even before traffic
	breaker   func(name string) (UpstreamHealth, bool) // may be nil: health from traffic alone
	now       func() time.Time
	tmpl      *template.Template
	stats     statsCache
	health    healthWindow
	// viewerOf says what the client of r may see; set by New.
	viewerOf func(r *http.Request) viewer
}

// viewer is what one client may see of the store: repositories it may
// read, and errors that name none only if it may read everything (their
// messages may name any repository).
type viewer struct {
	mayRead  func(repo string) bool
	readsAll bool
}

func newStatusPage(o Options) (*statusPage, error) {
	t, err := parseStatusTemplate()
	if err != nil {
		return nil, err
	}
	return &statusPage{
		src: o.Status, gatherer: o.Gatherer, errs: o.RecentErrors, upstreams: upstreamNames(o),
		breaker: o.UpstreamHealth,
		now:     time.Now, tmpl: t,
		stats:  statsCache{ttl: statsTTL},
		health: healthWindow{span: healthSpan, step: healthStep},
		// Until New says who may see what: nothing that names a repository.
		viewerOf: func(*http.Request) viewer { return viewer{mayRead: func(string) bool { return false }} },
	}, nil
}

// ServeHTTP renders into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := p.report(r.Context(), p.viewerOf(r))
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, rep); err != nil {
		infoFrom(r.Context()).err = err
		http.Error(w, "status page: internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// No script runs on this page, whatever a repository name contains.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// statsCache keeps the store's Stats for ttl. One caller computes while
// others use the previous value, or wait for the first one.
type statsCache struct {
	ttl time.Duration

	mu      sync.Mutex
	at      time.Time
	st      cache.Stats
	err     error
	running chan struct{} // closed when the computation in progress ends
}

func (c *statsCache) get(ctx context.Context, now time.Time, compute func() (cache.Stats, error)) (cache.Stats, time.Time, error) {
	for {
		c.mu.Lock()
		fresh := !c.at.IsZero() && now.Sub(c.at) < c.ttl
		if fresh || (c.running != nil && !c.at.IsZero()) {
			st, at, err := c.st, c.at, c.err
			c.mu.Unlock()
			return st, at, err
		}
		if wait := c.running; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return cache.Stats{}, time.Time{}, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.running = done
		c.mu.Unlock()

		st, err := compute() // outside the lock: it reads the whole index
		c.mu.Lock()
		c.st, c.err, c.at, c.running = st, err, now, nil
		c.mu.Unlock()
		close(done)
		return st, now, err
	}
}

// upstreamNames lists the upstreams the page shows before they have had
// traffic: all of them when o.Upstreams can name them (an UpstreamSet
// can), else the default one.
func upstreamNames(o Options) []string {
	if n, ok := o.Upstreams.(interface{ Names() []string }); ok {
		return n.Names()
	}
	if o.Upstream != nil {
		return []string{o.Upstream.Name()}
	}
	return nil
}

// UpstreamHealth is one upstream's circuit breaker as the status page
// shows it.
type UpstreamHealth struct {
	Down      bool
	Since     time.Time // marked down, or up again; zero: up since start
	NextProbe time.Time // while down
	LastError string    // the last failure in words; "" if none
	LastAt    time.Time
}

// Breaker is an upstream that reports its circuit breaker: an
// *upstream.Client.
type Breaker interface {
	Name() string
	Health() transport.HealthState
}

// BreakersOf is Options.UpstreamHealth for these upstreams' breakers.
func BreakersOf[B Breaker](bs ...B) func(name string) (UpstreamHealth, bool) {
	return func(name string) (UpstreamHealth, bool) {
		for _, b := range bs {
			if b.Name() == name {
				h := b.Health()
				return UpstreamHealth{Down: h.Down, Since: h.Since, NextProbe: h.NextProbe, LastError: h.Last, LastAt: h.LastAt}, true
			}
		}
		return UpstreamHealth{}, false
	}
}
