package upstreamtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Fault says what Faulty does to one request. The zero Fault passes the
// request through untouched. Fields combine where that makes sense
// (Delay with anything; Stall, Corrupt, TruncateAfter and BytesPerSec on
// one body).
type Fault struct {
	// Status, if not 0, answers with this status and a v2 error body
	// instead of asking the registry.
	Status int
	// RetryAfter is sent as Retry-After with Status.
	RetryAfter string
	// Header is added to the response, forwarded or not: e.g. Docker
	// Hub's "Ratelimit-Limit: 100;w=21600".
	Header http.Header
	// DropHeader names response headers to remove from a forwarded
	// response, e.g. Docker-Content-Digest.
	DropHeader []string
	// Body, if not nil, replaces a forwarded response's body (its
	// Content-Length follows); the status and other headers are kept.
	Body []byte
	// Delay waits before the response headers are sent.
	Delay time.Duration
	// Stall pauses the body for this long after StallAfter bytes (0:
	// right after the headers).
	Stall      time.Duration
	StallAfter int64
	// Corrupt flips the first byte of the body; the length is kept, so
	// only a digest check notices.
	Corrupt bool
	// TruncateAfter > 0 sends this many body bytes, then aborts the
	// connection (the client sees an unexpected EOF).
	TruncateAfter int64
	// Reset closes the connection without any response.
	Reset bool
	// BytesPerSec > 0 paces the body to about this rate.
	BytesPerSec int64
	// IgnoreRange drops the request's Range header, so the registry
	// answers 200 with the whole blob, as a server without range support.
	IgnoreRange bool
	// Redirect answers 307 to Faulty's CDN (CDNURL), which serves the
	// same path from the registry, as Docker Hub sends blobs to its CDN;
	// only if the registry would serve the request (so a 401 challenge
	// still comes first).
	// The redirect carries a one-time token, as a signed URL would: the
	// CDN needs no Authorization header, and records any it gets.
	Redirect bool
}

// writeError answers with ft.Status and a v2 error envelope.
func (f *Faulty) writeError(w http.ResponseWriter, r *http.Request, ft Fault) {
	if ft.RetryAfter != "" {
		w.Header().Set("Retry-After", ft.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ft.Status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{
		"code": errorCode(ft.Status, r.URL.Path), "message": "injected by upstreamtest.Faulty",
	}}})
}

func errorCode(status int, path string) string {
	switch {
	case status == http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case status == http.StatusForbidden:
		return "DENIED"
	case status == http.StatusNotFound && strings.Contains(path, "/manifests/"):
		return "MANIFEST_UNKNOWN"
	case status == http.StatusNotFound && strings.Contains(path, "/blobs/"):
		return "BLOB_UNKNOWN"
	case status == http.StatusNotFound:
		return "NAME_UNKNOWN"
	case status == http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case status >= 500:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}
