package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream"
)

// Errors the handlers raise about a request itself.
var (
	errNameInvalid      = errors.New("invalid repository name")
	errTagInvalid       = errors.New("invalid tag")
	errDigestInvalid    = errors.New("invalid digest")
	errPaginationNumber = errors.New("invalid number of results requested")
	errUnsupported      = errors.New("the operation is unsupported")
	errNotFoundRoute    = errors.New("no such endpoint")
	// errFillFailed: a blob fetched on a miss failed (wrong bytes, a
	// short body, the upstream gone) before its first byte was sent.
	errFillFailed = errors.New("the blob could not be fetched whole from the upstream and verified; nothing is cached")
)

// apiError is one row of the table: what a client sees.
type apiError struct {
	Status  int
	Code    string
	Message string
}

// classify maps an error to its v2 code and HTTP status. It is the one place
// that knows the mapping; route tells which "unknown" code a 404 gets.
func classify(err error, route string) apiError {
	switch {
	case errors.Is(err, errNameInvalid):
		return apiError{http.StatusBadRequest, "NAME_INVALID", err.Error()}
	case errors.Is(err, errTagInvalid):
		return apiError{http.StatusBadRequest, "TAG_INVALID", err.Error()}
	case errors.Is(err, errDigestInvalid):
		return apiError{http.StatusBadRequest, "DIGEST_INVALID", err.Error()}
	case errors.Is(err, errPaginationNumber):
		return apiError{http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", err.Error()}
	case errors.Is(err, errUnsupported):
		return apiError{http.StatusMethodNotAllowed, "UNSUPPORTED", err.Error()}
	case errors.Is(err, errPushClosed):
		return apiError{http.StatusUnauthorized, "UNAUTHORIZED", errPushClosed.Error()}
	case errors.Is(err, errAuthRequired), errors.Is(err, errAuthFailed):
		return apiError{http.StatusUnauthorized, "UNAUTHORIZED", "authentication required"}
	case errors.As(err, new(*loginRefused)):
		return apiError{http.StatusTooManyRequests, "TOOMANYREQUESTS", err.Error()}
	case errors.Is(err, errDenied):
		return apiError{http.StatusForbidden, "DENIED", err.Error()}
	case errors.Is(err, push.ErrMirroredTag):
		return apiError{http.StatusForbidden, "DENIED", err.Error()}
	case errors.Is(err, errUnknownNamespace):
		// 404, not 403: the name is unknown here, nothing is forbidden;
		// and containerd tries its next host (the registry itself) on a 404
		// and reports that host's answer if it fails too, where a 403 was
		// the error it reported after its own fallback.
		return apiError{http.StatusNotFound, "NAME_UNKNOWN", err.Error()}
	case errors.Is(err, errBodyIdle):
		return apiError{http.StatusRequestTimeout, "BLOB_UPLOAD_INVALID", err.Error() + "; resume from the upload's Range"}
	case errors.Is(err, errNotFoundRoute):
		return apiError{http.StatusNotFound, "NOT_FOUND", err.Error()}
	case errors.As(err, new(*push.RangeError)):
		return apiError{http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", err.Error()}
	case errors.Is(err, push.ErrUploadInvalid):
		return apiError{http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error()}
	case errors.Is(err, push.ErrTooManyUploads):
		return apiError{http.StatusTooManyRequests, "TOOMANYREQUESTS", err.Error()}
	case errors.Is(err, push.ErrUploadBusy):
		// 503, not 429: docker retries a layer's push on UNAVAILABLE, and
		// gives up at once on TOOMANYREQUESTS.
		return apiError{http.StatusServiceUnavailable, "UNAVAILABLE", err.Error()}
	case errors.Is(err, push.ErrUploadUnknown):
		return apiError{http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"}
	case errors.Is(err, cache.ErrDigestInvalid):
		return apiError{http.StatusBadRequest, "DIGEST_INVALID", err.Error()}
	case errors.Is(err, cache.ErrTagInvalid):
		return apiError{http.StatusBadRequest, "TAG_INVALID", err.Error()}
	case errors.Is(err, cache.ErrSizeInvalid):
		return apiError{http.StatusBadRequest, "SIZE_INVALID", err.Error()}
	case errors.Is(err, cache.ErrTooLarge):
		return apiError{http.StatusRequestEntityTooLarge, "SIZE_INVALID", err.Error()}
	case errors.Is(err, cache.ErrManifestBlobUnknown):
		return apiError{http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", err.Error()}
	case errors.Is(err, cache.ErrManifestInvalid):
		return apiError{http.StatusBadRequest, "MANIFEST_INVALID", err.Error()}
	case errors.Is(err, push.ErrDeleteDisabled):
		return apiError{http.StatusMethodNotAllowed, "UNSUPPORTED", "deletes are disabled on this registry"}
	case errors.Is(err, cache.ErrEvicted):
		// Retryable, and the retry uploads: the replica forgot the content.
		return apiError{http.StatusServiceUnavailable, "UNAVAILABLE", err.Error()}
	// Before the upstream's cases: the store's own timeout is no upstream's.
	case errors.Is(err, cache.ErrStoreUnavailable):
		return apiError{http.StatusServiceUnavailable, "UNAVAILABLE", "the content store (storage.s3) does not answer: " +
			"wharf serves what it holds locally and refuses the rest until the store is back"}
	case errors.Is(err, cache.ErrNotFound):
		return apiError{http.StatusNotFound, unknownCode(route), unknownMessage(route)}
	case errors.Is(err, cache.ErrOffline):
		// Not 503: offline, the store is all there is, so the answer is
		// final and a client's retries would only repeat it. The 404's
		// code is the route's, its message says why.
		return apiError{http.StatusNotFound, unknownCode(route), unknownMessage(route) + ": wharf is offline and does not hold it"}
	case errors.Is(err, cache.ErrUnknownUpstream):
		return apiError{http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry"}
	case errors.Is(err, upstream.ErrUnauthorized):
		return apiError{http.StatusUnauthorized, "UNAUTHORIZED", "the upstream registry requires authentication for this repository"}
	case errors.Is(err, upstream.ErrDenied):
		return apiError{http.StatusForbidden, "DENIED", "the upstream registry denied access to this repository"}
	case errors.Is(err, upstream.ErrDown):
		return down(err)
	case errors.Is(err, upstream.ErrTooManyRequests):
		return apiError{http.StatusTooManyRequests, "TOOMANYREQUESTS", "the upstream registry's rate limit was reached and nothing is cached"}
	case errors.Is(err, upstream.ErrInvalid):
		return apiError{http.StatusBadRequest, "NAME_INVALID", "the upstream cannot be asked for this name or reference"}
	case errors.Is(err, upstream.ErrRejected):
		return rejected(err)
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return apiError{http.StatusGatewayTimeout, "UNAVAILABLE", "the upstream registry did not answer in time and nothing is cached"}
	case errors.Is(err, upstream.ErrTargetRefused):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry redirected wharf (or named a token server) " +
			"where it will not go: an address on this site's own network, a non-http(s) URL or too many redirects; nothing is cached"}
	case errors.Is(err, cache.ErrNotManifest):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry sent something that is not a manifest; nothing is cached"}
	case errors.Is(err, upstream.ErrTooLarge):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry sent something that is not a manifest " +
			"(over the size limit); nothing is cached"}
	case errors.Is(err, upstream.ErrDigestMismatch):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry sent content that does not match its digest; nothing is cached"}
	case errors.Is(err, upstream.ErrUnavailable):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry failed and nothing is cached"}
	case errors.Is(err, errFillFailed):
		return apiError{http.StatusBadGateway, "UNAVAILABLE", errFillFailed.Error()}
	}
	return apiError{http.StatusInternalServerError, "UNKNOWN", "internal error"}
}

// rejected passes on an upstream's other 4xx answer (its status and v2
// code): the request, not wharf or the network, is what the upstream refused.
func rejected(err error) apiError {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status >= 400 && ue.Status < 500 {
		code := ue.Code
		if code == "" {
			code = "UNKNOWN"
		}
		return apiError{ue.Status, code, "the upstream registry refused the request: " + ue.Message}
	}
	return apiError{http.StatusBadGateway, "UNAVAILABLE", "the upstream registry refused the request"}
}

// down says which upstream is down and since when: 503, which clients
// retry, with Retry-After set to the upstream's next probe (writeError),
// rather than a bare 502 that a docker user sees without its body.
func down(err error) apiError {
	msg := "the upstream registry is down and nothing is cached"
	var ue *upstream.Error
	if errors.As(err, &ue) {
		msg = "the upstream registry " + ue.Upstream + " is down (marked " + ue.Message + ") and nothing is cached; " +
			"wharf probes it in the background and serves it again as soon as it answers"
	}
	return apiError{http.StatusServiceUnavailable, "UNAVAILABLE", msg}
}

func unknownCode(route string) string {
	switch route {
	case routeManifest:
		return "MANIFEST_UNKNOWN"
	case routeBlob:
		return "BLOB_UNKNOWN"
	}
	return "NAME_UNKNOWN"
}

func unknownMessage(route string) string {
	switch route {
	case routeManifest:
		return "manifest unknown"
	case routeBlob:
		return "blob unknown to registry"
	}
	return "repository name not known to registry"
}

// retryAfter is the upstream's Retry-After for a 429, when it gave one.
func retryAfter(err error) (int, bool) {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.RetryAfter > 0 {
		secs := int(ue.RetryAfter.Seconds() + 0.999)
		return secs, true
	}
	return 0, false
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes the v2 error envelope for err.
func writeError(w http.ResponseWriter, r *http.Request, err error) apiError {
	info := infoFrom(r.Context())
	ae := classify(err, info.route)
	var detail any
	if ae.Status == http.StatusInternalServerError {
		detail = map[string]string{"requestId": info.id}
	}
	if ae.Status == http.StatusServiceUnavailable {
		if secs, ok := retryAfter(err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		} else if errors.Is(err, push.ErrUploadBusy) {
			w.Header().Set("Retry-After", "5") // a buffer frees as a chunk ends
		}
	}
	if ae.Status == http.StatusTooManyRequests {
		secs, ok := retryAfter(err)
		if lr := new(*loginRefused); errors.As(err, lr) {
			secs, ok = (*lr).seconds(), true
		}
		if !ok {
			secs = 60
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if errors.Is(err, errAuthRequired) || errors.Is(err, errAuthFailed) {
		w.Header().Set("WWW-Authenticate", challenge) // wharf's own 401s only, not an upstream's
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.Code, Message: ae.Message, Detail: detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ae.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return ae
}
