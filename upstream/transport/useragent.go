package transport

import (
	"errors"
	"net/http"
)

// UserAgent sets the User-Agent header on every request, so upstream
// operators can tell wharf's traffic apart (Docker Hub asks for this).
type UserAgent struct {
	next  http.RoundTripper
	agent string
}

// NewUserAgent wraps next so that requests carry agent.
func NewUserAgent(next http.RoundTripper, agent string) (*UserAgent, error) {
	if next == nil {
		return nil, errors.New("transport: NewUserAgent: nil next transport")
	}
	if agent == "" {
		return nil, errors.New("transport: NewUserAgent: empty user agent")
	}
	return &UserAgent{next: next, agent: agent}, nil
}

// RoundTrip implements http.RoundTripper.
func (u *UserAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context()) // a RoundTripper must not modify the caller's request
	r.Header.Set("User-Agent", u.agent)
	return u.next.RoundTrip(r)
}
