package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
)

// MaxBackoff caps one wait between retries, jitter included.
const MaxBackoff = 10 * time.Second

// RetryOptions configures Retry.
type RetryOptions struct {
	Name          string        // upstream label for metrics and logs
	MaxRetries    int           // retries after the first attempt; negative counts as 0
	Backoff       time.Duration // first wait; doubled each retry, with jitter, capped at MaxBackoff
	MaxRetryAfter time.Duration // the longest Retry-After worth waiting for
	Metrics       *metrics.Metrics
	Logger        logrus.FieldLogger // nil discards
}

// Retry retries idempotent requests (GET and HEAD without a body) that
// failed in a way a later attempt may not:
//
//   - 429 Too Many Requests: waits the Retry-After the upstream asked for,
//     or the backoff when it named none. A Retry-After longer than
//     MaxRetryAfter is returned at once: a client is waiting on us, and
//     the caller can pass the wait on (429 + Retry-After) faster than we
//     can sit it out.
//   - 500, 502, 503, 504: the status codes of overloaded or restarting
//     registries, load balancers and CDNs. 500 is included because Docker
//     Hub and S3-backed registries return it for transient faults and a GET
//     is safe to repeat; 501, 505 and the rest of 5xx are deterministic
//     and returned at once. A Retry-After on these is honoured like on 429.
//   - errors without a response (refused, reset, EOF before headers,
//     header timeout), except TLS verification failures, refused token
//     realms and targets the Guard refused, which will not fix themselves.
//
// Waits double from Backoff with "equal jitter" (half fixed, half random,
// so concurrent clients spread out but never retry immediately) and stop
// with the caller's context. The last response or error is returned as is
// when the retries are used up. Discarded responses are drained a little
// and closed so their connections can be reused.
type Retry struct {
	next http.RoundTripper
	opts RetryOptions
	log  logrus.FieldLogger
}

// NewRetry wraps next.
func NewRetry(next http.RoundTripper, opts RetryOptions) (*Retry, error) {
	if next == nil {
		return nil, errors.New("transport: NewRetry: nil next transport")
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.Backoff <= 0 {
		return nil, fmt.Errorf("transport: NewRetry: backoff %v is not positive", opts.Backoff)
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	return &Retry{next: next, opts: opts, log: log}, nil
}

// RoundTrip implements http.RoundTripper.
func (rt *Retry) RoundTrip(req *http.Request) (*http.Response, error) {
	if !replayable(req) {
		return rt.next.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		resp, err := rt.next.RoundTrip(req)
		reason, wait, retry := rt.classify(ctx, resp, err, attempt)
		if !retry || attempt >= rt.opts.MaxRetries {
			return resp, err
		}
		if resp != nil {
			drain(resp.Body)
		}
		rt.opts.Metrics.UpstreamRetry(rt.opts.Name, reason)
		rt.log.WithFields(logrus.Fields{
			"upstream": rt.opts.Name, "reason": reason, "attempt": attempt + 1, "wait": wait,
		}).Debug("retrying upstream request")
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// classify says whether an attempt's outcome is worth retrying, why (the
// metrics label: 429, 5xx or network), and how long to wait first.
func (rt *Retry) classify(ctx context.Context, resp *http.Response, err error, attempt int) (string, time.Duration, bool) {
	if ctx.Err() != nil {
		return "", 0, false // the caller gave up; never retried
	}
	if err != nil {
		if isPermanent(err) {
			return "", 0, false
		}
		return "network", rt.backoff(attempt), true
	}
	var reason string
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		reason = "429"
	case http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		reason = "5xx"
	default:
		return "", 0, false
	}
	wait := rt.backoff(attempt)
	if after, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		if after > rt.opts.MaxRetryAfter {
			return "", 0, false // too long to hold a client: give the caller the 429 now
		}
		wait = after
	}
	return reason, wait, true
}

// backoff returns the wait before retry number attempt+1.
func (rt *Retry) backoff(attempt int) time.Duration {
	d := rt.opts.Backoff
	for i := 0; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// ParseRetryAfter reads a Retry-After value, either delay-seconds or an
// HTTP date (RFC 9110 §10.2.3), as a duration from now. A date in the past
// is a zero wait.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second) // keep the Duration from overflowing
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// replayable reports whether req may be sent again as it is: only GET and
// HEAD, which are idempotent, and only without a body.
func replayable(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}

// isPermanent reports errors that another attempt will not cure.
func isPermanent(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.Is(err, ErrRealmRefused) || errors.Is(err, ErrTargetRefused) || errors.Is(err, ErrDown) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain reads a little of a discarded body and closes it, which lets
// net/http reuse the connection for small error bodies without letting a
// large one hold us up.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
