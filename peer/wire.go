package peer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream"
)

// RelayedHeader marks an error answer that is the upstream's, relayed by
// the owner ("upstream"): the owner is well, the registry said no or could
// not answer, and asking the next replica would only ask the registry
// again. An error answer without it is the peer's own (a broken or
// foreign replica): the asker marks the peer failed and goes on.
const RelayedHeader = "Wharf-Peer-Relayed"

// SkipHeader marks an answer that says the peer cannot answer for this
// request's upstream ("unknown-upstream": it is configured without it,
// as during a rolling change of the configuration). The asker asks the
// next replica for this request, and does not mark the peer failed: it
// answers every other upstream.
const SkipHeader = "Wharf-Peer-Skip"

// relays pairs each upstream sentinel the owner relays with the status
// it travels as; sentinelOf reads the same table back. Order matters:
// ErrDown wraps ErrUnavailable, so it comes first.
var relays = []struct {
	sentinel error
	status   int
}{
	{upstream.ErrNotFound, http.StatusNotFound},
	{upstream.ErrUnauthorized, http.StatusUnauthorized},
	{upstream.ErrDenied, http.StatusForbidden},
	{upstream.ErrTooManyRequests, http.StatusTooManyRequests},
	{upstream.ErrTimeout, http.StatusGatewayTimeout},
	// Marked down at the owner: the asker's client gets the same 503 it
	// would get from one node.
	{upstream.ErrDown, http.StatusServiceUnavailable},
	{upstream.ErrRejected, http.StatusBadRequest},
}

// relayed sends err, from the owner's cache, as an answer a peer.Origin
// reads back into the same upstream sentinel (see sentinelOf).
func relayed(err error) (status int, relay bool) {
	switch {
	case errors.Is(err, errInvalid):
		return http.StatusBadRequest, false
	case errors.Is(err, cache.ErrUnknownUpstream):
		// Configured differently from the asker: SkipHeader says so.
		return http.StatusMisdirectedRequest, false
	case errors.Is(err, cache.ErrNotFound):
		return http.StatusNotFound, true
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, true
	}
	for _, r := range relays {
		if errors.Is(err, r.sentinel) {
			return r.status, true
		}
	}
	switch {
	case errors.Is(err, upstream.ErrUnavailable), errors.Is(err, upstream.ErrDigestMismatch),
		errors.Is(err, upstream.ErrTooLarge), errors.Is(err, upstream.ErrTargetRefused),
		errors.Is(err, cache.ErrNotManifest), errors.Is(err, cache.ErrFillDigestMismatch),
		errors.Is(err, cache.ErrFillSizeMismatch), errors.Is(err, cache.ErrFillStalled):
		// The registry failed or sent what does not verify: the next
		// replica would ask the same registry.
		return http.StatusBadGateway, true
	}
	return http.StatusInternalServerError, false
}

// writeError answers a peer with err. The message names what failed; it
// goes only to a replica holding the secret.
func writeError(w http.ResponseWriter, err error) {
	status, relay := relayed(err)
	h := w.Header()
	if errors.Is(err, cache.ErrUnknownUpstream) {
		h.Set(SkipHeader, "unknown-upstream")
	}
	if relay {
		h.Set(RelayedHeader, "upstream")
		var ue *upstream.Error
		if errors.As(err, &ue) && ue.RetryAfter > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(ue.RetryAfter.Seconds())), 10))
		}
	}
	http.Error(w, err.Error(), status)
}

// sentinelOf is the upstream sentinel a relayed status stands for.
func sentinelOf(status int) error {
	for _, r := range relays {
		if r.status == status {
			return r.sentinel
		}
	}
	return upstream.ErrUnavailable
}

// relayedError is the *upstream.Error a relayed answer stands for, so
// that the cache and proxy treat it as they treat the registry's own.
func relayedError(name, op, peer string, resp *http.Response, msg string) *upstream.Error {
	e := &upstream.Error{
		Upstream: name, Op: op, Status: resp.StatusCode, Err: sentinelOf(resp.StatusCode),
		// The message reaches clients: it does not name the peer's
		// address, which is the replicas' business.
		Message: "relayed by the owning replica: " + msg,
	}
	if s, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); err == nil && s > 0 && s < 1<<20 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// peerError is a peer's failure, as opposed to an answer: no connection,
// a timeout, a broken body, or an error status the peer did not mark as
// relayed. The asker marks the peer failed and tries the next replica.
type peerError struct {
	peer string
	err  error
}

// skipError is a peer's answer that it cannot answer for the upstream
// (SkipHeader): the asker asks the next replica, and the peer stays up.
type skipError struct{ peer, upstream string }

func (e *skipError) Error() string {
	return fmt.Sprintf("peer %s: not configured with upstream %q", e.peer, e.upstream)
}

func (e *peerError) Error() string { return fmt.Sprintf("peer %s: %v", e.peer, e.err) }
func (e *peerError) Unwrap() error { return e.err }
