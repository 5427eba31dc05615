package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
)

// Store is what proxy needs from the cache.
type Store interface {
	Manifest(ctx context.Context, repo cache.Repo, ref string, accept []string) (*cache.Manifest, error)
	Blob(ctx context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error)
	StatBlob(ctx context.Context, repo cache.Repo, d digest.Digest) (int64, error)
	Tags(ctx context.Context, repo cache.Repo, n int, last string) ([]string, bool, error)
	Catalog(ctx context.Context) ([]cache.Repo, error)
}

// Upstream names the registry that client names resolve to and applies its
// naming rules (Docker Hub's library/ prefix).
type Upstream interface {
	Name() string
	Repository(path string) string
}

// Options configure the handler.
type Options struct {
	Store          Store
	Upstream       Upstream     // the default upstream, when Upstreams is nil
	Upstreams      Upstreams    // the upstreams requests are routed to; nil: Upstream alone
	Auth           *AuthOptions // access control; nil: a read-only mirror (anyone pulls, nobody pushes)
	MetricsHandler http.Handler // served at /metrics when set
	// StatusPage (a *statuspage.Page) is served at / when set, with the
	// client's access in the request's context (statuspage.WithViewer).
	StatusPage http.Handler
	Metrics    *metrics.Metrics
	Logger     logrus.FieldLogger
	// BodyIdleTimeout closes a request whose body sends no byte for this
	// long (see idleBody); 0 is no limit.
	BodyIdleTimeout time.Duration
	// Prefetch is given the manifests clients GET (after the answer) and
	// those a HEAD made the cache fetch, to fetch images' blobs ahead of
	// their clients; nil is off.
	Prefetch Prefetcher
}

type server struct {
	opts      Options
	log       logrus.FieldLogger
	upstreams Upstreams
	auth      *authenticator
}

// New returns wharf's HTTP handler: the v2 API, /healthz, /metrics and the
// status page, wrapped in the middleware stack.
func New(opts Options) (http.Handler, error) {
	if opts.Store == nil || (opts.Upstream == nil && opts.Upstreams == nil) {
		return nil, errors.New("proxy: a store and an upstream are required")
	}
	if opts.Upstreams == nil {
		set, err := NewUpstreamSet(opts.Upstream)
		if err != nil {
			return nil, err
		}
		opts.Upstreams = set
	}
	if opts.Upstream == nil {
		opts.Upstream = opts.Upstreams.Default()
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	s := &server{opts: opts, log: opts.Logger, upstreams: opts.Upstreams}
	var ao AuthOptions
	if opts.Auth != nil {
		ao = *opts.Auth
	}
	a, err := newAuthenticator(ao)
	if err != nil {
		return nil, err
	}
	s.auth = a
	return s.middleware(s.routes()), nil
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: it writes the v2 error for a returned error
// and logs unexpected ones once, with the request id. An error after the
// response started cannot be reported in the body any more: the connection
// is aborted so the client sees a failed transfer, never a clean end.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		err := h(w, r)
		if err == nil {
			return
		}
		info := infoFrom(r.Context())
		info.err = err
		if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
			panic(http.ErrAbortHandler)
		}
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client left; nobody to tell
		}
		writeError(w, r, err)
	})
}

func (s *server) base(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if r.Method != http.MethodHead {
		_, err := io.WriteString(w, "{}")
		return err
	}
	return nil
}

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// unmatched explains a request no route took: a v2 path with an invalid
// name, tag or digest gets that error; anything else NOT_FOUND.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request) error {
	return explainUnmatched(r.URL.Path)
}

func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	return fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errUnsupported)
}
