package transport

import (
	"net/http"
	"time"
)

// The base transport's connection pool, sized for how wharf fetches: the
// blobs of an image several at a time and a big blob in several Range
// segments, 30 and more requests to one host at once, many of them
// redirected to one CDN host. Go's default keeps 2 idle connections per
// host, so after a burst all but 2 were closed and the next burst paid
// for TCP and TLS again.
//
// Each *http.Transport has a pool of its own, and the guard makes up to
// four per upstream from the base (split.go, guard.go): the API and the
// blob transport, each for the registry's own host and, for a public
// upstream, again with a checking dialer for other hosts (CDN, token
// server). The bounds below are per pool: at most MaxIdleConns idle
// connections in each, so 4 × MaxIdleConns per upstream at worst, and in
// practice far fewer (HTTP/2 keeps one connection per host; only the
// blob pools hold many).
const (
	// MaxIdleConnsPerHost is the idle connections a pool keeps per host
	// (the registry, its CDN, its token server): above the blob requests
	// wharf has in flight to one host, so a burst's connections all
	// survive it.
	MaxIdleConnsPerHost = 64
	// MaxIdleConns bounds the idle connections a pool keeps in all: two
	// hosts (a registry and its CDN, or a CDN and a token server) at
	// MaxIdleConnsPerHost each.
	MaxIdleConns = 128
	// IdleConnTimeout is how long an idle connection is kept: longer than
	// the pause between the manifests and the blobs of a pull and between
	// the pulls of a rollout (Go's default). A server that closes sooner
	// (a load balancer's 60s) takes the connection out of the pool as it
	// does, and a GET that meets such a close in flight is retried by Go's
	// transport on a new connection.
	IdleConnTimeout = 90 * time.Second
)

// NewBase returns the default base transport: Go's default (proxy from
// the environment, dial and TLS timeouts, HTTP/2 attempted over TLS where
// the server offers it) with the idle pool above. HTTP/2 carries all of a
// host's requests on one connection; an HTTP/1.1 host gets one connection
// per request in flight, kept for the next. Blobs go over a clone of it
// without HTTP/2, with the same pool settings but a pool of its own
// (split.go, made by the guard).
func NewBase() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = true // Go's default already, but the guard's custom dialer needs it
	t.MaxIdleConns = MaxIdleConns
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = IdleConnTimeout
	return t
}
