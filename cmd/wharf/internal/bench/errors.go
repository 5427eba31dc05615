package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// StatusError is a response with a status the request did not expect. It
// keeps the start of the body, where registries put their v2 error code.
type StatusError struct {
	Method string
	URL    string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Errors a pull reports for manifests it cannot follow.
var (
	ErrManifest = errors.New("unusable manifest")
	ErrPlatform = errors.New("no manifest for the platform")
)

// errorKind names the class of err for the errors-by-kind report. The set
// is small and fixed, so that a failing run reads as "412 × http_503", not
// as 412 different messages.
func errorKind(err error) string {
	var se *StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Status)
	case errors.Is(err, ErrDigestMismatch):
		return "digest"
	case errors.Is(err, ErrSizeMismatch):
		return "size"
	case errors.Is(err, ErrPlatform):
		return "platform"
	case errors.Is(err, ErrManifest):
		return "manifest"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne), isConnError(err):
		return "network"
	}
	return "other"
}

// isConnError catches the connection failures net/http reports without a
// net.Error: a body cut short, a reset, and net/http's unexported "server
// closed idle connection", which only its text identifies.
func isConnError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "server closed")
}
