package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// client is one simulated client: its own connections and token cache, as
// a separate docker daemon would have, and its own recorder.
type client struct {
	id    int
	base  *url.URL
	http  *http.Client
	own   *http.Transport // closed at the end, unless the caller gave one
	rec   *recorder
	ctr   *counters
	check bool // verify digests
}

// counters are shared by all clients and read by the progress line while
// the run goes on, hence atomic.
type counters struct {
	bytes    atomic.Int64
	requests atomic.Int64
	ops      atomic.Int64
	failed   atomic.Int64
}

// newClient builds the stack
//
//	auth (challenges, tokens) → user agent → base transport
//
// from upstream/transport, the same one wharf uses towards its upstreams,
// without the retry layer: a benchmark reports a failed request rather than
// hide it behind a second attempt.
func newClient(id int, base *url.URL, c *Common, ctr *counters) (*client, error) {
	cl := &client{id: id, base: base, rec: newRecorder(uint64(id) + 1), ctr: ctr, check: true}
	next := c.Transport
	if next == nil {
		cl.own = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   c.Parallel + 2,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Blobs are compressed already or random; asking for gzip
			// would only make a server that obliges burn CPU.
			DisableCompression: true,
			TLSClientConfig:    &tls.Config{InsecureSkipVerify: c.Insecure}, //nolint:gosec // the user asked with --insecure
		}
		next = cl.own
	}
	ua, err := transport.NewUserAgent(next, c.UserAgent)
	if err != nil {
		return nil, err
	}
	creds := transport.Credentials{Username: c.Username, Password: c.Password}
	tokens, err := transport.NewTokens(ua, creds)
	if err != nil {
		return nil, err
	}
	auth, err := transport.NewAuth(ua, base, creds, tokens)
	if err != nil {
		return nil, err
	}
	cl.http = &http.Client{Transport: auth}
	return cl, nil
}

func (c *client) close() {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// url returns the registry URL for path, which starts with /v2/.
func (c *client) url(path string) string {
	return strings.TrimSuffix(c.base.String(), "/") + path
}

// do sends a request and counts it. A nil body sends none.
func (c *client) do(ctx context.Context, method, target string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
	}
	c.ctr.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// expect returns a *StatusError, with the start of the body, unless resp
// has one of the wanted statuses. It closes the body when it fails.
func expect(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &StatusError{
		Method: resp.Request.Method,
		URL:    resp.Request.URL.Redacted(),
		Status: resp.StatusCode,
		Body:   strings.TrimSpace(string(b)),
	}
}
