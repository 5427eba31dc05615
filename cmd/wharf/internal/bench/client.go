package bench

import (
	"context"
	"crypto/tls"
	"errors"
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
	// hangAfter > 0 bounds each request, its body included (ErrHang).
	hangAfter time.Duration
	// tally, if not nil, classifies every request's outcome (the storm).
	tally *tally
	// bufLen is the size of the read buffers of blob transfers.
	bufLen int
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
	cl := &client{id: id, base: base, rec: newRecorder(uint64(id) + 1), ctr: ctr, check: true, hangAfter: c.HangAfter, bufLen: bufSize}
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

// do sends a request and counts it. A nil body sends none. With
// hangAfter set, the request and the reading of its body get that long,
// after which they fail with ErrHang.
func (c *client) do(ctx context.Context, method, target string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
	if c.hangAfter <= 0 {
		return c.send(ctx, method, target, header, body, size)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.hangAfter, ErrHang)
	resp, err := c.send(ctx, method, target, header, body, size)
	if err != nil {
		err = hangCause(ctx, err)
		cancel()
		return nil, err
	}
	resp.Body = &deadlineBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel}
	return resp, nil
}

func (c *client) send(ctx context.Context, method, target string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
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
	return c.http.Do(req)
}

// deadlineBody is a body read under its request's hang deadline: a read
// cut by the deadline says so (ErrHang), and closing releases the timer.
type deadlineBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = hangCause(b.ctx, err)
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// hangCause wraps err with ErrHang when ctx ended on the hang deadline.
func hangCause(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), ErrHang) {
		return fmt.Errorf("%w: %w", ErrHang, err)
	}
	return err
}

// call sends a request that carries nothing back but headers: it expects
// one of the statuses want, closes the body, and settles the outcome. The
// response is returned for its headers (an upload's Location).
func (c *client) call(ctx context.Context, kind, method, target string, header http.Header, body io.Reader, size int64, want ...int) (_ *http.Response, err error) {
	defer func() { c.settle(ctx, kind, err) }()
	resp, err := c.do(ctx, method, target, header, body, size)
	if err != nil {
		return nil, err
	}
	if err := expect(resp, want...); err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// maxErrorBody is how much of an unexpected response's body is kept: enough
// for a v2 error envelope to parse whole.
const maxErrorBody = 4 << 10

// expect returns a *StatusError, with the start of the body, unless resp
// has one of the wanted statuses. It closes the body when it fails.
func expect(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{
		Method: resp.Request.Method,
		URL:    resp.Request.URL.Redacted(),
		Status: resp.StatusCode,
		Body:   strings.TrimSpace(string(b)),
	}
}
