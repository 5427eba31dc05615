package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrHeaderTimeout is returned (wrapped) when an upstream did not send
// response headers within the per-attempt timeout.
var ErrHeaderTimeout = errors.New("timed out waiting for response headers")

// HeaderTimeout bounds the time from sending a request to receiving its
// response headers, and nothing after that. A timer cancels the attempt's
// context if it fires before headers arrive and is stopped when they do, so
// a large blob streaming slowly but steadily is never cut off (a plain
// context.WithTimeout or http.Client.Timeout would cut it off). The
// attempt's context is released when the body is closed.
//
// It works with any base transport, which http.Transport's own
// ResponseHeaderTimeout would not.
type HeaderTimeout struct {
	next    http.RoundTripper
	timeout time.Duration
}

// NewHeaderTimeout wraps next; timeout must be positive.
func NewHeaderTimeout(next http.RoundTripper, timeout time.Duration) (*HeaderTimeout, error) {
	if next == nil {
		return nil, errors.New("transport: NewHeaderTimeout: nil next transport")
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("transport: NewHeaderTimeout: timeout %v is not positive", timeout)
	}
	return &HeaderTimeout{next: next, timeout: timeout}, nil
}

// RoundTrip implements http.RoundTripper.
func (h *HeaderTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(h.timeout, func() {
		cancel(fmt.Errorf("%w after %v", ErrHeaderTimeout, h.timeout))
	})
	resp, err := h.next.RoundTrip(req.WithContext(ctx))
	// Stop reports false if the timer already fired: the context is then
	// cancelled (or about to be) and the body would fail on first read,
	// so the attempt counts as timed out even if headers just arrived.
	if !timer.Stop() {
		if resp != nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, timeoutCause(ctx, req, err)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// timeoutCause returns the error for an attempt whose timer fired: the
// caller's own context error if that ended first, ours otherwise.
func timeoutCause(ctx context.Context, req *http.Request, err error) error {
	if req.Context().Err() != nil {
		return req.Context().Err()
	}
	cause := context.Cause(ctx)
	if err != nil && cause != nil {
		return fmt.Errorf("%w: %v", cause, err)
	}
	if cause == nil {
		cause = ErrHeaderTimeout
	}
	return cause
}

// cancelOnClose releases the attempt's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	once   sync.Once
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.cancel)
	return err
}
