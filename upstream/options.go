package upstream

import (
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Defaults for Options' zero values.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultMaxRetries    = 4
	DefaultBackoff       = 250 * time.Millisecond
	DefaultMaxRetryAfter = 30 * time.Second
	DefaultUserAgent     = "wharf"
)

// Options configure a Client. Zero values take the defaults given.
type Options struct {
	// Name labels the upstream in logs, metrics and errors. Default: the
	// URL's host (with port), Docker Hub's API hosts shown as "docker.io".
	Name string
	// URL is the registry's base URL, "https://registry-1.docker.io" or
	// "http://127.0.0.1:5001"; a path prefix is kept, /v2/ goes after it.
	URL string
	// Username and Password are optional credentials, used for Basic
	// challenges and to authenticate token requests. Without them the
	// client pulls anonymously.
	Username string
	Password string
	// DockerConfig names a Docker config.json to take Username and
	// Password from when Username is empty: its "auths" entry for the
	// URL's host or for Name (see dockerconfig.go). Default "".
	DockerConfig string
	// CAFile names a PEM file of CA certificates trusted besides the
	// system's; InsecureSkipVerify accepts any certificate (lab use).
	// Either needs Transport to be nil or an *http.Transport, which is
	// cloned, not changed.
	CAFile             string
	InsecureSkipVerify bool
	// OfficialLibrary applies Docker Hub's rule that a one-component
	// repository "alpine" is "library/alpine" upstream. Set it for Docker
	// Hub (it is not inferred from the URL, so a mirror of Docker Hub
	// behind another URL can have it too).
	OfficialLibrary bool
	// Timeout bounds the wait for response headers, per attempt; the body
	// may take as long as it takes. Default 30s.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt for
	// 429, 5xx and connection errors. 0 means the default, 4; any negative
	// value means no retries.
	MaxRetries int
	// Backoff is the first wait between attempts, doubled each retry with
	// jitter and capped at 10s. Default 250ms.
	Backoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured while a client
	// waits; a longer one fails at once with ErrTooManyRequests and
	// Error.RetryAfter set. Default 30s; negative means never wait.
	MaxRetryAfter time.Duration
	// DownAfter is the number of consecutive failed attempts (connection
	// errors, 5xx, StallAfter without headers) after which the upstream is
	// marked down: requests fail at once with ErrDown and a background
	// probe (GET /v2/ after ProbeMin, doubling to ProbeMax) marks it up
	// again. Defaults 3, 3s, 1s, 30s (see transport.Health).
	DownAfter          int
	StallAfter         time.Duration
	ProbeMin, ProbeMax time.Duration
	// FarLatency is the least time to first byte (Client.Near) at which
	// the registry counts as far. Below it the registry is near: prefetch
	// and segmented fetch, which hide round trips and per-connection caps,
	// stand aside. 0 (the default here; wharf's config sets 10ms) makes no
	// registry near.
	FarLatency time.Duration
	// Network is where the upstream is, which decides where its redirects
	// and token realms may lead (see transport.Guard): the default,
	// transport.NetworkAuto, classifies the URL's host, so an upstream on
	// the internet cannot send wharf to a loopback, private or link-local
	// address while one on 127.0.0.1 or the LAN may use a CDN next to it.
	// NetworkPublic and NetworkInternal force the answer (tests treat an
	// upstream on 127.0.0.1 as public with it).
	Network transport.Network
	// Transport is the base transport. Default: transport.NewBase(), Go's
	// default (proxy from the environment, HTTP/2) with an idle pool
	// sized for many requests in flight to one host. One given here is
	// used as it is (cloned first for CAFile or InsecureSkipVerify),
	// except that an *http.Transport is cloned once more without HTTP/2
	// for blob GETs and uploads (see transport.Guard).
	Transport http.RoundTripper
	// Metrics may be nil.
	Metrics *metrics.Metrics
	// Logger may be nil (discard). The client logs only at debug level
	// (retries); errors are returned, and logged by whoever handles them.
	Logger logrus.FieldLogger
	// UserAgent is sent with every request. Default "wharf".
	UserAgent string
}

// withDefaults returns o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	switch {
	case o.MaxRetryAfter == 0:
		o.MaxRetryAfter = DefaultMaxRetryAfter
	case o.MaxRetryAfter < 0:
		o.MaxRetryAfter = 0
	}
	if o.Transport == nil {
		o.Transport = transport.NewBase()
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return o
}
