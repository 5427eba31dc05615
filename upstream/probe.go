package upstream

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
	"syscall"
	"time"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// DefaultProbeTimeout bounds Probe when its caller gives no timeout: long
// enough for a registry across the world, short enough that a start-up
// check reports a dead upstream while the operator is still watching.
const DefaultProbeTimeout = 5 * time.Second

// ProbeKind is what a probe found. Every kind but ProbeOK is a
// misconfiguration or an outage an operator should hear about at start.
type ProbeKind int

const (
	// ProbeOK: /v2/ answered 2xx or 401 (credentials are checked later,
	// per repository), so the URL points at a registry.
	ProbeOK ProbeKind = iota
	// ProbeUnreachable: no answer (connection refused, DNS failure,
	// timeout, reset).
	ProbeUnreachable
	// ProbePlainHTTP: the URL says https:// but the server speaks plain
	// HTTP.
	ProbePlainHTTP
	// ProbeHTTPSOnly: the URL says http:// but the server speaks only
	// TLS (or redirects to https://).
	ProbeHTTPSOnly
	// ProbeCertificate: the server's TLS certificate is not trusted.
	ProbeCertificate
	// ProbeNotRegistry: an answer, but not a registry's: /v2/ is 404 or
	// another unexpected status.
	ProbeNotRegistry
)

// ProbeResult is the outcome of one Probe, explainable to an operator.
type ProbeResult struct {
	Kind   ProbeKind
	URL    string // the base URL probed
	Status int    // /v2/'s status; 0 without an answer
	Err    error  // the transport's error; nil with an answer
}

// OK reports whether the upstream looks usable.
func (r ProbeResult) OK() bool { return r.Kind == ProbeOK }

// Problem says in words what is wrong, "" when nothing is.
func (r ProbeResult) Problem() string {
	switch r.Kind {
	case ProbeUnreachable:
		return fmt.Sprintf("unreachable: %v", bare(r.Err))
	case ProbePlainHTTP:
		return "the server speaks plain HTTP, not HTTPS"
	case ProbeHTTPSOnly:
		return "the server speaks only HTTPS"
	case ProbeCertificate:
		return fmt.Sprintf("its TLS certificate is not trusted: %v", bare(r.Err))
	case ProbeNotRegistry:
		return fmt.Sprintf("GET /v2/ answered %d %s, not a registry's 200 or 401", r.Status, http.StatusText(r.Status))
	}
	return ""
}

// Fix says what to change in the setting, "" when nothing needs to.
func (r ProbeResult) Fix() string {
	switch r.Kind {
	case ProbeUnreachable:
		return "check the host and port (wharf keeps serving what it has cached, and retries on each request)"
	case ProbePlainHTTP:
		return "use " + withScheme(r.URL, "http")
	case ProbeHTTPSOnly:
		return "use " + withScheme(r.URL, "https")
	case ProbeCertificate:
		return "set caFile to the CA that signed it (or insecureSkipVerify, for a lab)"
	case ProbeNotRegistry:
		return "point the URL at the registry's API, without a path unless the registry is served under one"
	}
	return ""
}

// bare drops net/http's "Get \"https://…/v2/\": " in front of a
// transport error: the warning names the URL already.
func bare(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func withScheme(u, scheme string) string {
	_, rest, _ := strings.Cut(u, "://")
	return scheme + "://" + rest
}

// Probe asks the upstream once for /v2/, the API's version check, and says
// whether the URL points at a registry wharf can talk to. It is the
// start-up check: one request, no retries, no authentication (a 401 is a
// healthy answer) and no metrics, over the client's own base transport,
// so TLS settings and the network guard are the ones pulls use. A timeout
// of 0 means DefaultProbeTimeout.
func (c *Client) Probe(ctx context.Context, timeout time.Duration) ProbeResult {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := ProbeResult{URL: c.base.String()}
	hc := &http.Client{Transport: c.guard, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("v2/").String(), nil)
	if err != nil {
		res.Kind, res.Err = ProbeUnreachable, err
		return res
	}
	resp, err := hc.Do(req)
	if err != nil {
		res.Err = err
		res.Kind = c.probeFailure(ctx, err)
		return res
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) //nolint:errcheck // only to reuse the connection
	res.Status = resp.StatusCode
	switch {
	case resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusUnauthorized:
		res.Kind = ProbeOK
	case c.base.Scheme == "http" && resp.StatusCode/100 == 3 && strings.HasPrefix(resp.Header.Get("Location"), "https://"):
		res.Kind = ProbeHTTPSOnly
	case c.base.Scheme == "http" && resp.StatusCode == http.StatusBadRequest && speaksTLS(ctx, c.base.Host):
		res.Kind = ProbeHTTPSOnly // Go and nginx answer plain HTTP on a TLS port with 400
	default:
		res.Kind = ProbeNotRegistry
	}
	return res
}

// probeFailure classifies a request that got no answer.
func (c *Client) probeFailure(ctx context.Context, err error) ProbeKind {
	var (
		dnsErr     *net.DNSError
		netTimeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		return ProbePlainHTTP
	case transport.UntrustedCertificate(err):
		return ProbeCertificate
	case errors.As(err, &dnsErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netTimeout) && netTimeout.Timeout():
		return ProbeUnreachable
	case c.base.Scheme == "http" && speaksTLS(ctx, c.base.Host):
		return ProbeHTTPSOnly // a TLS server that closed a plain request (EOF, reset)
	}
	return ProbeUnreachable
}

// speaksTLS reports whether a TLS handshake with hostport succeeds, with
// any certificate: it tells a TLS-only server behind an http:// URL. Only
// the handshake happens; nothing is sent over the connection.
func speaksTLS(ctx context.Context, hostport string) bool {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "80")
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // detection only, no data sent
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
