package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream"
)

// TestErrorTable checks every row of the error table, each error wrapped
// the way the layers below wrap it.
func TestErrorTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("layer: %w", fmt.Errorf("below: %w", err)) }
	up := func(status int, code string, sentinel error) error {
		return &upstream.Error{Status: status, Code: code, Err: sentinel, RetryAfter: 90 * time.Second}
	}
	cases := []struct {
		err    error
		route  string
		status int
		code   string
	}{
		{wrap(errNameInvalid), routeManifest, 400, "NAME_INVALID"},
		{wrap(errTagInvalid), routeManifest, 400, "TAG_INVALID"},
		{wrap(errDigestInvalid), routeBlob, 400, "DIGEST_INVALID"},
		{wrap(errPaginationNumber), routeTags, 400, "PAGINATION_NUMBER_INVALID"},
		{wrap(errUnsupported), routeManifest, 405, "UNSUPPORTED"},
		{wrap(errNotFoundRoute), routeUnmatched, 404, "NOT_FOUND"},
		{fmt.Errorf("%w: %w", errors.New("fill: digest mismatch"), errFillFailed), routeBlob, 502, "UNAVAILABLE"},
		{wrap(errBodyIdle), routeUpload, 408, "BLOB_UPLOAD_INVALID"},
		{wrap(errUnknownNamespace), routeManifest, 404, "NAME_UNKNOWN"},
		{wrap(errUnknownNamespace), routeBlob, 404, "NAME_UNKNOWN"},
		{wrap(errDenied), routeManifest, 403, "DENIED"},
		{wrap(errAuthRequired), routeBase, 401, "UNAUTHORIZED"},
		{wrap(errAuthFailed), routeManifest, 401, "UNAUTHORIZED"},
		{wrap(cache.ErrNotFound), routeManifest, 404, "MANIFEST_UNKNOWN"},
		{wrap(cache.ErrNotFound), routeBlob, 404, "BLOB_UNKNOWN"},
		{wrap(cache.ErrNotFound), routeTags, 404, "NAME_UNKNOWN"},
		{wrap(cache.ErrUnknownUpstream), routeManifest, 404, "NAME_UNKNOWN"},
		// The content store's own timeout is not the upstream's 504.
		{wrap(fmt.Errorf("%w: %w", cache.ErrStoreUnavailable, context.DeadlineExceeded)), routeBlob, 503, "UNAVAILABLE"},
		{wrap(cache.ErrStoreUnavailable), routeManifest, 503, "UNAVAILABLE"},
		{wrap(cache.ErrOffline), routeManifest, 404, "MANIFEST_UNKNOWN"},
		{wrap(cache.ErrOffline), routeBlob, 404, "BLOB_UNKNOWN"},
		{wrap(cache.ErrOffline), routeTags, 404, "NAME_UNKNOWN"},
		{wrap(up(401, "UNAUTHORIZED", upstream.ErrUnauthorized)), routeManifest, 401, "UNAUTHORIZED"},
		{wrap(up(403, "DENIED", upstream.ErrDenied)), routeBlob, 403, "DENIED"},
		{wrap(up(429, "TOOMANYREQUESTS", upstream.ErrTooManyRequests)), routeManifest, 429, "TOOMANYREQUESTS"},
		{wrap(up(0, "", upstream.ErrTimeout)), routeBlob, 504, "UNAVAILABLE"},
		{wrap(context.DeadlineExceeded), routeBlob, 504, "UNAVAILABLE"},
		{wrap(up(503, "", upstream.ErrUnavailable)), routeManifest, 502, "UNAVAILABLE"},
		{wrap(up(0, "", upstream.ErrDown)), routeManifest, 503, "UNAVAILABLE"},
		{wrap(up(0, "", upstream.ErrDown)), routeBlob, 503, "UNAVAILABLE"},
		{wrap(up(200, "", upstream.ErrDigestMismatch)), routeManifest, 502, "UNAVAILABLE"},
		{wrap(up(200, "", upstream.ErrTooLarge)), routeManifest, 502, "UNAVAILABLE"},
		{wrap(up(0, "", upstream.ErrTargetRefused)), routeManifest, 502, "UNAVAILABLE"},
		{wrap(up(0, "", upstream.ErrTargetRefused)), routeBlob, 502, "UNAVAILABLE"},
		{wrap(cache.ErrNotManifest), routeManifest, 502, "UNAVAILABLE"},
		{wrap(up(0, "", upstream.ErrInvalid)), routeManifest, 400, "NAME_INVALID"},
		{wrap(up(400, "MANIFEST_INVALID", upstream.ErrRejected)), routeManifest, 400, "MANIFEST_INVALID"},
		{wrap(push.ErrUploadUnknown), routeUpload, 404, "BLOB_UPLOAD_UNKNOWN"},
		{wrap(push.ErrTooManyUploads), routeUpload, 429, "TOOMANYREQUESTS"},
		{wrap(push.ErrUploadInvalid), routeUpload, 400, "BLOB_UPLOAD_INVALID"},
		{wrap(&push.RangeError{Size: 10}), routeUpload, 416, "BLOB_UPLOAD_INVALID"},
		{wrap(cache.ErrDigestInvalid), routeUpload, 400, "DIGEST_INVALID"},
		{wrap(cache.ErrSizeInvalid), routeUpload, 400, "SIZE_INVALID"},
		{wrap(cache.ErrTooLarge), routeManifest, 413, "SIZE_INVALID"},
		{wrap(cache.ErrTagInvalid), routeManifest, 400, "TAG_INVALID"},
		{wrap(cache.ErrManifestInvalid), routeManifest, 400, "MANIFEST_INVALID"},
		{wrap(cache.ErrManifestBlobUnknown), routeManifest, 400, "MANIFEST_BLOB_UNKNOWN"},
		{wrap(push.ErrDeleteDisabled), routeBlob, 405, "UNSUPPORTED"},
		{wrap(errors.New("disk on fire")), routeBlob, 500, "UNKNOWN"},
		{wrap(cache.ErrEvicted), routeUpload, 503, "UNAVAILABLE"},
		{wrap(cache.ErrEvicted), routeManifest, 503, "UNAVAILABLE"},
		{wrap(push.ErrUploadBusy), routeUpload, 503, "UNAVAILABLE"},
	}
	for _, c := range cases {
		got := classify(c.err, c.route)
		if got.Status != c.status || got.Code != c.code {
			t.Errorf("%v on %s: %d %s, want %d %s", c.err, c.route, got.Status, got.Code, c.status, c.code)
		}
	}
}

func TestErrorBody(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/v2/x/manifests/y", nil)
	info := &reqInfo{id: "req-1", route: routeManifest}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))

	w := httptest.NewRecorder()
	writeError(w, r, &upstream.Error{Status: 429, Err: upstream.ErrTooManyRequests, RetryAfter: 1500 * time.Millisecond})
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Errorf("429: %d Retry-After %q, want 2 (rounded up)", w.Code, w.Header().Get("Retry-After"))
	}
	// A down upstream: 503 (clients retry it) with the time to the next
	// probe, and a message naming the upstream and since when.
	w = httptest.NewRecorder()
	writeError(w, r, fmt.Errorf("manifest x@y: %w", &upstream.Error{Upstream: "registry.example", Err: upstream.ErrDown,
		RetryAfter: 4 * time.Second, Message: "since 2026-12-02T03:30:00Z after no response headers after 3s"}))
	if w.Code != 503 || w.Header().Get("Retry-After") != "4" {
		t.Errorf("down: %d Retry-After %q, want 503 and 4", w.Code, w.Header().Get("Retry-After"))
	}
	for _, want := range []string{"registry.example is down", "since 2026-12-02T03:30:00Z"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("down: body %s lacks %q", w.Body, want)
		}
	}
	w = httptest.NewRecorder()
	writeError(w, r, fmt.Errorf("upload x: %w", push.ErrUploadBusy))
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" {
		t.Errorf("busy: %d Retry-After %q, want 503 and 5", w.Code, w.Header().Get("Retry-After"))
	}
	w = httptest.NewRecorder()
	writeError(w, r, errors.New("boom"))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"requestId":"req-1"`) {
		t.Errorf("500 body %s lacks the request id", w.Body)
	}
	if strings.Contains(w.Body.String(), "boom") {
		t.Errorf("500 body leaks the internal error: %s", w.Body)
	}

	// wharf's own 401 challenges for credentials; an upstream's does not
	// (the client's credentials for wharf are not what is wrong).
	w = httptest.NewRecorder()
	writeError(w, r, fmt.Errorf("x: %w", errAuthFailed))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Basic realm="wharf"` {
		t.Errorf("own 401: %d WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	w = httptest.NewRecorder()
	writeError(w, r, &upstream.Error{Status: 401, Err: upstream.ErrUnauthorized})
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("upstream's 401: %d WWW-Authenticate %q, want none", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// TestErrorMessagesSayWhy: the messages crane and the logs show for
// failures that share a status with others say which failure it is.
func TestErrorMessagesSayWhy(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&upstream.Error{Status: 200, Err: upstream.ErrDigestMismatch}, "does not match its digest"},
		{&upstream.Error{Status: 503, Err: upstream.ErrUnavailable}, "the upstream registry failed"},
		{fmt.Errorf("ns=%q: %w", "quay.io", errUnknownNamespace), `ns="quay.io": no upstream is configured for this registry`},
	} {
		if got := classify(tc.err, routeManifest).Message; !strings.Contains(got, tc.want) {
			t.Errorf("%v: message %q, want it to say %q", tc.err, got, tc.want)
		}
	}
}
