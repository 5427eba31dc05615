package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Client talks to one upstream registry. It is safe for concurrent use;
// make one per upstream and share it, so that connections and tokens are
// reused.
type Client struct {
	name            string
	base            *url.URL
	officialLibrary bool
	http            *http.Client
	guard           *transport.Guard // the bottom of the stack: the base transport, guarded (probes use it alone)
	health          *transport.Health
	limit           *transport.RateLimit // remembers the upstream's 429s and empty budget (RateLimited)
	latency         *transport.Latency   // the registry's least time to first byte (Near)
	farLatency      time.Duration        // Options.FarLatency
	metrics         *metrics.Metrics
	log             logrus.FieldLogger
}

// New builds a client for opts.URL, which must be an http or https URL
// with a host.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Name == "" {
		opts.Name = defaultName(base)
	}
	if opts.Transport, err = withTLS(opts.Transport, opts.CAFile, opts.InsecureSkipVerify); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
	}
	if opts.DockerConfig != "" && opts.Username == "" {
		if opts.Username, opts.Password, err = dockerConfigCredentials(opts.DockerConfig, base.Host, opts.Name); err != nil {
			return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
		}
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	log = log.WithField("upstream", opts.Name)
	guard, err := transport.NewGuard(opts.Transport, transport.GuardOptions{Upstream: base, Network: opts.Network})
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
	}
	st, err := buildTransport(base, guard, opts, log)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
	}
	c := &Client{
		name:            opts.Name,
		base:            base,
		officialLibrary: opts.OfficialLibrary,
		// Redirects are followed (blobs from a CDN), at most
		// transport.MaxRedirects and only to http(s); the guard at the
		// bottom of the stack decides where each hop may connect. No
		// overall timeout: a blob takes as long as it takes.
		http:       &http.Client{Transport: st.rt, CheckRedirect: transport.CheckRedirect},
		metrics:    opts.Metrics,
		log:        log,
		guard:      guard,
		health:     st.health,
		limit:      st.limit,
		latency:    st.latency,
		farLatency: opts.FarLatency,
	}
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upstream: URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream: URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("upstream: URL %q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream: URL %q: no credentials, query or fragment allowed (use Options.Username/Password)", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// stack is buildTransport's round tripper and the layers the Client
// asks questions of.
type stack struct {
	rt      http.RoundTripper
	health  *transport.Health
	limit   *transport.RateLimit
	latency *transport.Latency
}

// buildTransport stacks the round trippers (see transport's doc):
// retry → health → auth → ratelimit → latency → useragent → observe →
// timeout → guard → split → base, with token requests and health probes
// going useragent → observe → timeout → guard → split → base. The guard
// does the split (blob GETs and uploads to an HTTP/1.1 clone of base).
func buildTransport(base *url.URL, guard *transport.Guard, o Options, log logrus.FieldLogger) (stack, error) {
	timed, err := transport.NewHeaderTimeout(guard, o.Timeout)
	if err != nil {
		return stack{}, err
	}
	observed, err := transport.NewObserve(timed, o.Name, o.Metrics)
	if err != nil {
		return stack{}, err
	}
	agent, err := transport.NewUserAgent(observed, o.UserAgent)
	if err != nil {
		return stack{}, err
	}
	latency, err := transport.NewLatency(agent, base, o.Name, o.Metrics)
	if err != nil {
		return stack{}, err
	}
	limited, err := transport.NewRateLimit(latency, base, o.Name, o.Metrics)
	if err != nil {
		return stack{}, err
	}
	creds := transport.Credentials{Username: o.Username, Password: o.Password}
	tokens, err := transport.NewTokens(agent, creds)
	if err != nil {
		return stack{}, err
	}
	authed, err := transport.NewAuth(limited, base, creds, tokens)
	if err != nil {
		return stack{}, err
	}
	health, err := transport.NewHealth(authed, transport.HealthOptions{
		Name: o.Name, DownAfter: o.DownAfter, StallAfter: o.StallAfter,
		Probe: agent, ProbeURL: base.JoinPath("v2/"),
		ProbeMin: o.ProbeMin, ProbeMax: o.ProbeMax, Metrics: o.Metrics, Logger: log,
	})
	if err != nil {
		return stack{}, err
	}
	retry, err := transport.NewRetry(health, transport.RetryOptions{
		Name:          o.Name,
		MaxRetries:    o.MaxRetries,
		Backoff:       o.Backoff,
		MaxRetryAfter: o.MaxRetryAfter,
		Metrics:       o.Metrics,
		Logger:        log,
	})
	return stack{rt: retry, health: health, limit: limited, latency: latency}, err
}

// Down returns nil while the upstream is up, and while it is marked down
// the *Error (wrapping ErrDown) a request would fail with: since when, the
// failure that marked it down, the time to the next probe. For a status
// page; requests need not ask first.
func (c *Client) Down() error {
	if err := c.health.Down(); err != nil {
		return c.transportError(context.Background(), "health", err)
	}
	return nil
}

// RateLimited reports whether the upstream is rate-limiting wharf now: a
// 429 from the registry's own host within its Retry-After
// (transport.LimitedFor without one, transport.MaxLimitedFor at most) and
// no successful GET of that kind since, or Docker Hub's
// ratelimit-remaining at 0 within the last transport.LimitedFor and not
// refilled since (see transport.RateLimit). Requests are still sent; work that can wait
// (prefetch) asks first and holds back, leaving the budget to clients.
func (c *Client) RateLimited() bool { return !c.limit.Limited().IsZero() }

// Near reports whether the registry is near: the least time to first
// byte of its answers over the last few minutes (transport.Latency) is
// under Options.FarLatency. From a near registry one connection per blob
// fills the link and there are no round trips worth hiding, so work that
// only pays off far away (prefetch, segmented fetch) asks first and
// stands aside. Before any answer was timed it is not near.
func (c *Client) Near() bool {
	least, ok := c.latency.Least()
	return ok && least < c.farLatency
}

// Health is the circuit breaker's view of the upstream: up or down, since
// when, its last failure in words and, while down, the next probe.
func (c *Client) Health() transport.HealthState { return c.health.State() }

// Name is the upstream's label in logs, metrics and errors.
func (c *Client) Name() string { return c.name }

// Close stops the health probe and releases the base transport's idle
// connections. The client stays usable (never marked down again); Close
// exists so tests and shutdown leave no goroutines behind.
func (c *Client) Close() error {
	c.health.Close()
	if c.guard != nil {
		c.guard.CloseIdleConnections()
	}
	return nil
}

// endpoint returns base/v2/<repo>/<parts…>.
func (c *Client) endpoint(repo string, parts ...string) *url.URL {
	return c.base.JoinPath(append([]string{"v2", repo}, parts...)...)
}

// send makes one API call (with the transport's retries and auth) and
// returns a 2xx response, or the *Error for anything else. The caller
// closes the body.
func (c *Client) send(ctx context.Context, method, kind, op string, u *url.URL, h http.Header) (*http.Response, error) {
	resp, err := c.sendAny(ctx, method, kind, op, u, h)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.failure(c.statusError(op, resp))
	}
	return resp, nil
}

// sendAny is send returning a response of any status, for the one caller
// that reads a non-2xx as an answer (GetBlobRange's 416); only a request
// that got no response is an error (counted as a failure).
func (c *Client) sendAny(ctx context.Context, method, kind, op string, u *url.URL, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(transport.WithKind(ctx, kind), method, u.String(), nil)
	if err != nil {
		return nil, &Error{Upstream: c.name, Op: op, Message: err.Error(), Err: ErrInvalid}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.failure(c.transportError(ctx, op, err))
	}
	return resp, nil
}

// checkRepo refuses repository paths that are not valid names (upper case,
// empty components, "..", over 255 characters), which could otherwise
// address another endpoint of the upstream.
func (c *Client) checkRepo(op, repo string) error {
	if _, err := reference.WithName(repo); err != nil || strings.Contains(repo, ":") {
		return c.invalid(op, fmt.Sprintf("repository %q is not a valid name", repo))
	}
	return nil
}

// checkRef checks a manifest reference, a tag or a digest, and returns the
// digest if it is one.
func (c *Client) checkRef(op, repo, ref string) (digest.Digest, error) {
	if strings.Contains(ref, ":") {
		d, err := digest.Parse(ref)
		if err != nil {
			return "", c.invalid(op, fmt.Sprintf("reference %q: %v", ref, err))
		}
		return d, nil
	}
	named, err := reference.WithName(repo)
	if err != nil {
		return "", c.invalid(op, fmt.Sprintf("repository %q is not a valid name", repo))
	}
	if _, err := reference.WithTag(named, ref); err != nil {
		return "", c.invalid(op, fmt.Sprintf("tag %q is not valid", ref))
	}
	return "", nil
}

func (c *Client) invalid(op, msg string) error {
	return &Error{Upstream: c.name, Op: op, Message: msg, Err: ErrInvalid}
}

// manifestOp names a manifest operation for errors: "GET manifest repo:tag"
// or "HEAD manifest repo@sha256:…".
func manifestOp(method, repo, ref string) string {
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@"
	}
	return method + " manifest " + repo + sep + ref
}
