package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// The sentinels every error of this package wraps (exactly one of them,
// unless it is the caller's own context error). Test with errors.Is.
var (
	ErrNotFound        = errors.New("not found")            // 404
	ErrUnauthorized    = errors.New("unauthorized")         // 401, after auth was tried
	ErrDenied          = errors.New("denied")               // 403
	ErrTooManyRequests = errors.New("too many requests")    // 429 after retries, or Retry-After too long
	ErrUnavailable     = errors.New("upstream unavailable") // 5xx, refused, reset, EOF, a broken body
	ErrTimeout         = errors.New("upstream timed out")   // no response headers in time; 408
	// ErrDown: the upstream is marked down after consecutive failures and
	// nothing was sent (see transport.Health). It is an ErrUnavailable, so
	// whatever serves stale content on one does so on the other; Error
	// says since when, and RetryAfter is the time to the next probe.
	ErrDown           = fmt.Errorf("marked down: %w", ErrUnavailable)
	ErrDigestMismatch = errors.New("digest mismatch")          // the bytes don't hash to the digest asked for or announced
	ErrTooLarge       = errors.New("manifest too large")       // a manifest above oci.MaxManifestSize
	ErrNoDigest       = errors.New("no Docker-Content-Digest") // HEAD gave no digest; GET instead
	// ErrRejected is any other 4xx (400, 405, 416, …): the upstream refused
	// the request as such. Error.Code carries its v2 code (NAME_INVALID,
	// TAG_INVALID, …) for a caller that wants to pass it on. It is kept
	// apart from ErrUnavailable because retrying elsewhere or later will
	// not help, and from nil because every error names one sentinel.
	ErrRejected = errors.New("rejected by upstream")
	// ErrTargetRefused is a redirect or token realm wharf will not follow:
	// to an internal address while the upstream is public, to a scheme
	// other than http(s), or past transport.MaxRedirects. Nothing was sent
	// there (see transport.Guard).
	ErrTargetRefused = errors.New("upstream pointed at a target wharf refuses")
	// ErrInvalid is a repository, reference or offset this client refuses
	// to send at all; no request was made.
	ErrInvalid = errors.New("invalid argument")
)

// Error is what the client returns for a failed operation. It wraps one
// sentinel in Err.
type Error struct {
	Upstream   string        // the client's Name
	Op         string        // e.g. "GET manifest library/alpine:3.20"
	Status     int           // the upstream's HTTP status; 0 without a response
	Code       string        // first v2 error code in the body, e.g. MANIFEST_UNKNOWN
	Message    string        // its message, or what else explains the failure
	RetryAfter time.Duration // from Retry-After on 429/503, else 0
	Err        error         // one of the sentinels
	// Down, with ErrDown, is the down period: since when, the failure
	// that marked it down (in words) and the next probe. Not unwrapped:
	// Err stays the one sentinel.
	Down *transport.DownError
	// cause is the transport's error behind a request that got no
	// answer; see Cause.
	cause error
}

// Cause is the transport's error for a request that got no answer (a
// refused connection, a TLS failure), nil otherwise: for saying what
// happened in words (transport.Words), not for errors.Is, which tests
// the one sentinel.
func (e *Error) Cause() error { return e.cause }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream %s: %s: ", e.Upstream, e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, "%s ", e.Code)
	}
	b.WriteString(e.Err.Error())
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// statusSentinel maps an HTTP status to its sentinel.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrDenied
	case status == http.StatusTooManyRequests:
		return ErrTooManyRequests
	case status == http.StatusRequestTimeout:
		return ErrTimeout
	case status >= 400 && status < 500:
		return ErrRejected
	default: // 5xx, and 1xx/3xx that should never reach us
		return ErrUnavailable
	}
}

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 64 << 10

// statusError builds the *Error for a non-2xx response and closes its body.
func (c *Client) statusError(op string, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	e := &Error{Upstream: c.name, Op: op, Status: resp.StatusCode, Err: statusSentinel(resp.StatusCode)}
	e.Code, e.Message = parseErrorBody(body)
	if after, ok := transport.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = after
	}
	return e
}

// parseErrorBody reads the v2 error envelope
//
//	{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":…}]}
//
// and falls back to the "details" of Docker Hub's token server or to the
// start of a plain-text body.
func parseErrorBody(body []byte) (code, message string) {
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Details string `json:"details"`
	}
	if err := json.Unmarshal(body, &env); err == nil {
		if len(env.Errors) > 0 {
			return env.Errors[0].Code, env.Errors[0].Message
		}
		return "", env.Details
	}
	text := string(bytes.TrimSpace(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if strings.ContainsFunc(text, func(r rune) bool { return r < ' ' && r != '\t' }) {
		return "", "" // binary or multi-line (an HTML error page): not worth quoting
	}
	return "", text
}

// transportError builds the error for a request that got no response, or
// whose body broke: the caller's context error as itself (never an
// upstream failure), a refused redirect or realm as ErrTargetRefused, a
// timeout as ErrTimeout, anything else as ErrUnavailable.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("upstream %s: %s: %w", c.name, op, ctx.Err())
	}
	sentinel := ErrUnavailable
	var ne net.Error
	var down *transport.DownError
	switch {
	case errors.As(err, &down):
		return &Error{Upstream: c.name, Op: op, Err: ErrDown, RetryAfter: max(time.Until(down.NextProbe), time.Second), Down: down,
			Message: fmt.Sprintf("since %s after %s", down.Since.UTC().Format(time.RFC3339), down.Last)}
	case errors.Is(err, transport.ErrTargetRefused), errors.Is(err, transport.ErrRealmRefused):
		sentinel = ErrTargetRefused
	case errors.Is(err, transport.ErrHeaderTimeout) || (errors.As(err, &ne) && ne.Timeout()):
		sentinel = ErrTimeout
	}
	return &Error{Upstream: c.name, Op: op, Message: err.Error(), Err: sentinel, cause: err}
}

// failure counts err in metrics.UpstreamFailure and returns it. Answers
// that are normal for a mirror (not found, no digest on HEAD) and the
// caller's own cancellation are not failures.
func (c *Client) failure(err error) error {
	var reason string
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoDigest),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, ErrUnauthorized):
		reason = "unauthorized"
	case errors.Is(err, ErrDenied):
		reason = "denied"
	case errors.Is(err, ErrDown):
		reason = "down" // not sent: counted so that a dashboard sees what a down upstream refused
	case errors.Is(err, ErrTooManyRequests):
		reason = "429"
	case errors.Is(err, ErrTimeout):
		reason = "timeout"
	case errors.Is(err, ErrDigestMismatch):
		reason = "digest_mismatch"
	case errors.Is(err, ErrTooLarge):
		reason = "too_large"
	case errors.Is(err, ErrRejected):
		reason = "rejected"
	case errors.Is(err, ErrTargetRefused):
		reason = "target_refused"
	case errors.Is(err, ErrInvalid):
		return err // ours, not the upstream's
	default:
		reason = "unavailable"
	}
	c.metrics.UpstreamFailure(c.name, reason)
	return err
}
