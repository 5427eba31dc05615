package transport

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// answers is a RoundTripper that answers each request with the next
// canned status and headers: the answers of a registry that limits us.
type answers struct{ resp []*http.Response }

func (a *answers) RoundTrip(req *http.Request) (*http.Response, error) {
	r := a.resp[0]
	a.resp = a.resp[1:]
	r.Request, r.Body = req, http.NoBody
	return r, nil
}

func answer(status int, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &http.Response{StatusCode: status, Header: h}
}

// TestRateLimitLimited: a 429 limits the upstream for its Retry-After
// (LimitedFor without one, MaxLimitedFor at most) until a success, an
// empty Docker Hub budget for LimitedFor until an answer shows budget
// again; anything else never limits, nor does any answer from another
// host than the registry's (a redirect's CDN).
func TestRateLimitLimited(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		resp    *http.Response
		advance time.Duration // the clock moves this much after the answer
		limited bool          // Limited then says the upstream is limiting
		on      string        // the request: "" a GET to the registry, "cdn" a redirect's hop to its CDN, "HEAD", "manifest" (a GET)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"plain answers never limit", []step{
			{answer(200), 0, false, ""},
			{answer(503, "Retry-After", "60"), 0, false, ""},
			{answer(404), 0, false, ""},
		}},
		{"429 for its Retry-After", []step{
			{answer(429, "Retry-After", "10"), 9 * time.Second, true, ""},
			{answer(200), time.Second, false, ""},
		}},
		{"429 without Retry-After for LimitedFor", []step{
			{answer(429), LimitedFor - time.Second, true, ""},
			{answer(200), time.Second, false, ""},
		}},
		{"a success ends a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(200), 0, false, ""},
		}},
		{"budget shown ends a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(404, "Ratelimit-Remaining", "5;w=21600"), 0, false, ""},
		}},
		{"a failure does not end a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(503), 29 * time.Second, true, ""},
			{answer(404), time.Second, false, ""},
		}},
		{"a success with an empty budget does not end a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(200, "Ratelimit-Remaining", "0;w=21600"), 29 * time.Second, true, ""},
		}},
		{"a long Retry-After is capped", []step{
			{answer(429, "Retry-After", "86400"), MaxLimitedFor - time.Second, true, ""},
			{answer(404), time.Second, false, ""},
		}},
		{"a CDN's 429 and empty budget are not the registry's", []step{
			{answer(429, "Retry-After", "30"), 0, false, "cdn"},
			{answer(200, "Ratelimit-Remaining", "0"), 0, false, "cdn"},
		}},
		{"a CDN's success does not end the registry's 429", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(200, "Ratelimit-Remaining", "5"), 0, true, "cdn"},
		}},
		{"a HEAD's success does not end a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(200), 0, true, "HEAD"},
		}},
		{"another kind's success does not end a 429's wait", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(200), 0, true, "manifest"},
			{answer(200), 0, false, ""},
		}},
		{"a shorter later Retry-After keeps the longer", []step{
			{answer(429, "Retry-After", "30"), 0, true, ""},
			{answer(429, "Retry-After", "1"), 2 * time.Second, true, ""},
		}},
		{"empty budget until refilled", []step{
			{answer(200, "Ratelimit-Limit", "100;w=21600", "Ratelimit-Remaining", "0;w=21600"), 10 * time.Second, true, ""},
			{answer(200, "Ratelimit-Remaining", "1;w=21600"), 0, false, ""},
		}},
		{"empty budget for LimitedFor at most", []step{
			{answer(200, "Ratelimit-Remaining", "0"), LimitedFor, false, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			next := &answers{}
			for _, s := range tt.steps {
				next.resp = append(next.resp, s.resp)
			}
			rl, err := NewRateLimit(next, &url.URL{Scheme: "http", Host: "registry.test"}, "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			rl.now = func() time.Time { return now }
			if !rl.Limited().IsZero() {
				t.Fatal("limited before any answer")
			}
			for i, s := range tt.steps {
				method, u, ctx := http.MethodGet, "http://registry.test/v2/", context.Background()
				switch s.on {
				case "cdn":
					u = "http://cdn.test/blob"
				case "HEAD":
					method = http.MethodHead
				case "manifest":
					ctx = WithKind(ctx, KindManifest)
				}
				req, _ := http.NewRequestWithContext(ctx, method, u, nil)
				if _, err := rl.RoundTrip(req); err != nil {
					t.Fatal(err)
				}
				now = now.Add(s.advance)
				until := rl.Limited()
				if got := !until.IsZero(); got != s.limited {
					t.Errorf("step %d (%d %v), %v later: limited = %v (until %v), want %v", i, s.resp.StatusCode, s.resp.Header, s.advance, got, until, s.limited)
				}
				if !until.IsZero() && !until.After(now) {
					t.Errorf("step %d: limited until %v, which is not after now (%v)", i, until, now)
				}
			}
		})
	}
}
