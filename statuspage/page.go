package statuspage

import (
	"bytes"
	"context"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
)

// Store is what the page needs from the cache: a cheap size and the full
// picture by repository. Stats walks the whole index, so the page calls it
// at most once per statsTTL however often it is viewed.
type Store interface {
	Usage() (bytes, items int64)
	Stats() (inspect.Stats, error)
}

// Errors is the source of the grouped errors the page lists: proxy's
// RecentErrors hook, which knows what each error means.
type Errors interface {
	Entries() []ErrorGroup // the one seen last first
	Limit() int            // the most groups kept
}

// Options say where the page's numbers come from. Each source is optional
// and adds its sections; a page with none is empty but valid.
type Options struct {
	Gatherer prometheus.Gatherer // the registry wharf's metrics are on: traffic and upstreams
	Store    Store               // what the store holds
	Errors   Errors              // grouped errors
	// Upstreams lists every configured upstream, so each has its row
	// before its first request.
	Upstreams []string
	// Health, if set, says what an upstream's circuit breaker knows and
	// whether it counts as near (false: no such upstream); each row shows
	// it. See BreakersOf.
	Health func(name string) (Health, bool)
	// PullName names a stored repository as clients pull it ("" or nil:
	// by its store identity, "<upstream>/<path>").
	PullName func(cache.Repo) string
	Logger   logrus.FieldLogger // nil: discard
}

const (
	statsTTL   = 10 * time.Second
	topRepos   = 10
	healthSpan = 15 * time.Minute
	healthStep = 30 * time.Second
)

// Page serves the HTML page for people. Everything on it comes from the
// metrics registry (counters since start), the store (what it holds), the
// grouped errors and the upstreams' breakers; it holds no counters of its
// own. What names a repository is filtered by the Viewer in the request's
// context (WithViewer), which whoever mounts the page sets.
type Page struct {
	o      Options
	log    logrus.FieldLogger
	now    func() time.Time
	tmpl   *template.Template
	stats  statsCache
	health healthWindow
}

// New parses the page's template.
func New(o Options) (*Page, error) {
	t, err := parseTemplate(o.PullName)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	return &Page{
		o: o, log: log, now: time.Now, tmpl: t,
		stats:  statsCache{ttl: statsTTL},
		health: healthWindow{span: healthSpan, step: healthStep},
	}, nil
}

// ServeHTTP renders into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := p.report(r.Context(), viewerFrom(r.Context()))
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, rep); err != nil {
		p.log.WithError(err).Error("status page: rendering failed")
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

// Viewer is what one client may see of the store: repositories it may
// read (named as the store names them, "<upstream>/<path>"), and errors
// that name none only if it may read everything (their messages may name
// any repository).
type Viewer struct {
	MayRead  func(repo string) bool
	ReadsAll bool
}

type viewerKey struct{}

// WithViewer returns ctx carrying what its client may see. Without one the
// page shows nothing that names a repository: a mount that forgets access
// control hides, never leaks.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

func viewerFrom(ctx context.Context) Viewer {
	v, _ := ctx.Value(viewerKey{}).(Viewer)
	return v
}

// mayRead is v.MayRead, false when unset.
func (v Viewer) mayRead(repo string) bool {
	return v.ReadsAll || (v.MayRead != nil && v.MayRead(repo))
}

// statsCache keeps the store's Stats for ttl. One caller computes while
// others use the previous value, or wait for the first one.
type statsCache struct {
	ttl time.Duration

	mu      sync.Mutex
	at      time.Time
	st      inspect.Stats
	err     error
	running chan struct{} // closed when the computation in progress ends
}

func (c *statsCache) get(ctx context.Context, now time.Time, compute func() (inspect.Stats, error)) (inspect.Stats, time.Time, error) {
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
				return inspect.Stats{}, time.Time{}, ctx.Err()
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
