package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// explained is a logged error as the status page says it: a short kind
// (the rows group by it) and what happened in an operator's words. The
// error chain itself stays in the log and on hover.
type explained struct {
	kind  string
	words string
	// client: caused by a client's request. Such a request is logged at
	// info level (a 4xx), so the page takes it from there; the kinds a
	// mirror answers all day (not found, the auth challenge) are not
	// explained at all and stay off the page.
	client bool
	// fromInfo: an upstream's answer passed on as a 4xx (401, 403, 429):
	// logged at info level, but the operator's to fix.
	fromInfo bool
}

// explain classifies err by its type. up names the upstream when the
// error does not (the log entry's field); ok is false for errors it does
// not know, which the page shows as logged.
func explain(err error, up string) (e explained, ok bool) {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Upstream != "" {
		up = ue.Upstream
	}
	if up == "" {
		up = "the upstream"
	} else {
		up = "upstream " + up
	}
	switch {
	case err == nil:
		return explained{}, false
	case errors.Is(err, upstream.ErrDown):
		w := up + " is down"
		if ue != nil && ue.Down != nil {
			w += " since " + ue.Down.Since.UTC().Format("15:04 UTC")
			if ue.Down.Last != "" {
				w += " (" + ue.Down.Last + ")"
			}
		}
		return explained{kind: "upstream down", words: w + "; a miss fails at once until a probe succeeds"}, true
	case errors.Is(err, upstream.ErrTooManyRequests):
		return explained{kind: "rate limited", words: up + " refused: its pull rate limit is reached, and nothing was cached", fromInfo: true}, true
	case errors.Is(err, upstream.ErrUnauthorized):
		return explained{kind: "upstream auth", words: up + " refused wharf's credentials (401): check its username and password", fromInfo: true}, true
	case errors.Is(err, upstream.ErrDenied):
		return explained{kind: "upstream auth", words: up + " denied wharf access to the repository (403)", fromInfo: true}, true
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return explained{kind: "upstream timeout", words: up + " did not answer in time"}, true
	case errors.Is(err, upstream.ErrDigestMismatch), errors.Is(err, cache.ErrFillDigestMismatch):
		return explained{kind: "digest mismatch", words: "digest mismatch from " + up + ": the bytes were discarded, nothing kept"}, true
	case errors.Is(err, cache.ErrFillSizeMismatch):
		return explained{kind: "digest mismatch", words: up + " sent another size than it announced: the bytes were discarded"}, true
	case errors.Is(err, cache.ErrFillStalled):
		return explained{kind: "upstream stalled", words: up + " stopped sending a blob part-way; nothing kept"}, true
	case errors.Is(err, cache.ErrFillNoSpace), errors.Is(err, syscall.ENOSPC):
		return explained{kind: "disk full", words: "the data directory's disk is full: content was passed through, not kept"}, true
	case errors.Is(err, upstream.ErrTooLarge), errors.Is(err, cache.ErrNotManifest):
		return explained{kind: "bad upstream answer", words: up + " sent something that is not a manifest"}, true
	case errors.Is(err, upstream.ErrTargetRefused):
		return explained{kind: "refused redirect", words: up + " pointed wharf at an address or URL it will not follow"}, true
	case errors.Is(err, upstream.ErrRejected):
		w := up + " rejected the request"
		if ue != nil && ue.Status != 0 {
			w += fmt.Sprintf(" (%d %s)", ue.Status, ue.Code)
		}
		return explained{kind: "upstream rejected", words: w, fromInfo: true}, true
	case errors.Is(err, upstream.ErrUnavailable):
		w := up + " did not answer"
		switch {
		case ue != nil && ue.Status != 0:
			w = fmt.Sprintf("%s failed: %d %s", up, ue.Status, http.StatusText(ue.Status))
		case ue != nil && ue.Cause() != nil:
			w += " (" + transport.Words(ue.Cause()) + ")"
		}
		return explained{kind: "upstream failed", words: w}, true
	case errors.Is(err, errFillFailed):
		return explained{kind: "fill failed", words: "a blob could not be fetched whole from " + up + " and verified; nothing kept"}, true
	case errors.Is(err, errPanic):
		return explained{kind: "internal error", words: "a request handler panicked: a bug in wharf; the stack is in the log"}, true
	}
	return explainClient(err)
}

// explainClient says what a client did wrong, for the failures an
// operator may want to chase (a misconfigured client, a guessed password).
func explainClient(err error) (explained, bool) {
	var words string
	switch {
	case errors.Is(err, errNameInvalid):
		words = "client sent an invalid repository name"
	case errors.Is(err, errTagInvalid), errors.Is(err, cache.ErrTagInvalid):
		words = "client sent an invalid tag"
	case errors.Is(err, errDigestInvalid), errors.Is(err, cache.ErrDigestInvalid):
		words = "client sent an invalid digest"
	case errors.Is(err, cache.ErrManifestInvalid):
		words = "client pushed an invalid manifest"
	case errors.Is(err, cache.ErrManifestBlobUnknown):
		words = "client pushed a manifest whose blobs it had not uploaded"
	case errors.Is(err, errAuthFailed):
		words = "client sent a wrong user name or password"
	case errors.As(err, new(*loginRefused)):
		words = "too many failed logins: the client is refused for a while"
	case errors.Is(err, push.ErrMirroredTag):
		words = "client tried to push over a tag the upstream owns"
	case errors.Is(err, errUnknownNamespace):
		words = "client asked for a registry wharf does not mirror (?ns=)"
	case errors.Is(err, errDenied):
		words = "client was denied access by the access rules"
	default:
		return explained{}, false
	}
	return explained{kind: "client error", words: words, client: true}, true
}
