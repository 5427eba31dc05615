package upstream_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestClientRateLimited: a 429 whose Retry-After is too long to wait
// for, or Docker Hub's budget at 0, makes the client say the upstream is
// rate-limiting; a budget announced again clears the latter. A client
// that saw only ordinary answers, 5xx included, is not limited.
func TestClientRateLimited(t *testing.T) {
	fr := newFaultyRegistry(t)
	head := func(c *upstream.Client) error {
		_, err := c.HeadManifest(t.Context(), "faulty/app", "v1", acceptAll)
		return err
	}
	budget := func(n string) upstreamtest.Fault {
		return upstreamtest.Fault{Header: http.Header{"Ratelimit-Limit": {"100;w=21600"}, "Ratelimit-Remaining": {n + ";w=21600"}}}
	}

	c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.MaxRetries = -1 })
	fr.faulty.SetFault(always(upstreamtest.Fault{Status: http.StatusServiceUnavailable}))
	if err := head(c); err == nil || c.RateLimited() {
		t.Fatalf("after a 503: error %v, rate-limited %v; want an error, not limited", err, c.RateLimited())
	}
	fr.faulty.SetFault(always(upstreamtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"}))
	if err := head(c); !errors.Is(err, upstream.ErrTooManyRequests) {
		t.Fatalf("error = %v, want ErrTooManyRequests", err)
	}
	if !c.RateLimited() {
		t.Error("not rate-limited after a 429 asking for an hour")
	}
	fr.faulty.SetFault(always(budget("5")))
	if err := head(c); err != nil || !c.RateLimited() {
		t.Errorf("a success within the 429's Retry-After: error %v, rate-limited %v; want limited still", err, c.RateLimited())
	}

	hub := newClient(t, fr.faulty.URL, nil)
	fr.faulty.SetFault(always(budget("0")))
	if err := head(hub); err != nil || !hub.RateLimited() {
		t.Errorf("budget 0: error %v, rate-limited %v; want limited", err, hub.RateLimited())
	}
	fr.faulty.SetFault(always(budget("1")))
	if err := head(hub); err != nil || hub.RateLimited() {
		t.Errorf("budget 1 again: error %v, rate-limited %v; want not limited", err, hub.RateLimited())
	}
}
