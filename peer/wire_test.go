package peer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
)

// Every upstream error the owner relays comes back as the same sentinel,
// so the asking replica answers its client as one node would: a registry
// marked down is a 503 with Retry-After there too, not a 502.
func TestRelayedErrorsKeepTheirSentinel(t *testing.T) {
	for _, sentinel := range []error{
		upstream.ErrNotFound, upstream.ErrUnauthorized, upstream.ErrDenied, upstream.ErrTooManyRequests,
		upstream.ErrTimeout, upstream.ErrRejected, upstream.ErrDown, upstream.ErrUnavailable,
	} {
		status, relay := relayed(fmt.Errorf("fetch: %w", sentinel))
		if !relay {
			t.Errorf("%v is not relayed", sentinel)
			continue
		}
		if got := sentinelOf(status); !errors.Is(got, sentinel) {
			t.Errorf("%v relayed as %d comes back as %v", sentinel, status, got)
		}
	}
}
