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

// Errors the storm tells apart (outcome.go classifies them).
var (
	// ErrCut wraps a failure to read a body whose 2xx headers had
	// arrived: the transfer was cut before its end (a reset, an early
	// EOF), which is how a server refuses bytes it already started to
	// send. A verifying client never accepts such a body.
	ErrCut = errors.New("transfer cut before its end")
	// ErrHang is the cause of a request that outlived Common.HangAfter.
	ErrHang = errors.New("no answer within the hang deadline")
	// ErrLost is a 404 for content this client pushed and has not deleted.
	ErrLost = errors.New("pushed content not found")
	// ErrResurrected is a 200 for a manifest this client deleted.
	ErrResurrected = errors.New("deleted manifest still served")
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
