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
const (
	// MaxIdleConnsPerHost is the idle connections kept per host (the
	// registry, its CDN, its token server): above the requests wharf has
	// in flight to one host, so a burst's connections all survive it.
	MaxIdleConnsPerHost = 64
	// MaxIdleConns bounds the idle connections kept in all: a few hosts
	// per upstream (registry, CDN, token server), each at most
	// MaxIdleConnsPerHost.
	MaxIdleConns = 256
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
// without HTTP/2, with the same pool (split.go, made by the guard).
func NewBase() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ForceAttemptHTTP2 = true // Go's default already, but the guard's custom dialer needs it
	t.MaxIdleConns = MaxIdleConns
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = IdleConnTimeout
	return t
}
