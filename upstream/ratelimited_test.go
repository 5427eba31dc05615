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
// rate-limiting; a GET's success clears the former, a budget announced
// again the latter. A client that saw only ordinary answers, 5xx included, is
// not limited, nor one whose blob redirects met a CDN's 429 or empty
// budget: those are not the registry's.
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
	fr.faulty.SetFault(always(upstreamtest.Fault{}))
	if err := head(c); err != nil || !c.RateLimited() {
		t.Errorf("a HEAD's success within the 429's Retry-After: error %v, rate-limited %v; want limited still (Docker Hub serves HEADs past its limit)", err, c.RateLimited())
	}
	if _, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll); err != nil || c.RateLimited() {
		t.Errorf("a GET's success within the 429's Retry-After: error %v, rate-limited %v; want not limited", err, c.RateLimited())
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

	d, _ := pushLayer(t, fr.reg, "faulty/app", 1024)
	cdn := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.MaxRetries = -1 })
	for _, f := range []upstreamtest.Fault{
		{Status: http.StatusTooManyRequests, RetryAfter: "3600"},
		budget("0"),
	} {
		fr.faulty.ResetCounts()
		fr.faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			if r.Host == fr.faulty.CDNHost {
				return f
			}
			return upstreamtest.Fault{Redirect: true}
		})
		if rc, _, err := cdn.GetBlob(t.Context(), "faulty/app", d, 0); err == nil {
			rc.Close()
		}
		if fr.faulty.Count(http.MethodGet, "/blobs/") != 2 {
			t.Fatalf("requests %v, want the blob GET and its CDN hop", fr.faulty.Requests())
		}
		if cdn.RateLimited() {
			t.Errorf("rate-limited after the CDN answered %d %v; want only the registry's answers to count", f.Status, f.Header)
		}
	}
}
