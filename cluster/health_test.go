package cluster_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cluster"
)

const secret = "s3cr3t-of-the-cluster"

// TestHealthHandler: 200 only to the cluster secret as a bearer token, and
// nothing it answers holds the secret.
func TestHealthHandler(t *testing.T) {
	h := cluster.HealthHandler(secret)
	for _, tc := range []struct {
		name, method, auth string
		want               int
	}{
		{"the secret", http.MethodGet, "Bearer " + secret, http.StatusOK},
		{"the secret, HEAD", http.MethodHead, "Bearer " + secret, http.StatusOK},
		{"scheme in any case", http.MethodGet, "bearer " + secret, http.StatusOK},
		{"no credential", http.MethodGet, "", http.StatusUnauthorized},
		{"wrong secret", http.MethodGet, "Bearer nope", http.StatusUnauthorized},
		{"the secret's prefix", http.MethodGet, "Bearer " + secret[:5], http.StatusUnauthorized},
		{"the secret and more", http.MethodGet, "Bearer " + secret + "x", http.StatusUnauthorized},
		{"empty token", http.MethodGet, "Bearer ", http.StatusUnauthorized},
		{"basic scheme", http.MethodGet, "Basic " + secret, http.StatusUnauthorized},
		{"the bare secret", http.MethodGet, secret, http.StatusUnauthorized},
		{"POST", http.MethodPost, "Bearer " + secret, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, cluster.HealthPath, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if answer := rec.Body.String() + strings.Join(flatten(rec.Header()), " "); strings.Contains(answer, secret) {
				t.Fatalf("the answer holds the secret: %q", answer)
			}
		})
	}
}

// TestAuthenticate: the gate calls the handler behind it only for the
// secret; an empty secret opens nothing, the empty token included.
func TestAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		name, secret, auth string
		pass               bool
	}{
		{"the secret", secret, "Bearer " + secret, true},
		{"wrong secret", secret, "Bearer " + secret[1:], false},
		{"none", secret, "", false},
		{"empty secret, no credential", "", "", false},
		{"empty secret, empty token", "", "Bearer ", false},
		{"empty secret, a token", "", "Bearer x", false},
		{"the second of two", "new-secret-of-the-cluster\n" + secret, "Bearer " + secret, true},
		{"the first of two", "new-secret-of-the-cluster\n" + secret + "\n", "Bearer new-secret-of-the-cluster", true},
		{"neither of two", "new-secret-of-the-cluster\n" + secret, "Bearer " + secret + "\nnew-secret-of-the-cluster", false},
		{"blank lines only", "\n \n", "Bearer ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			h := cluster.Authenticate(tc.secret, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				called = true
				w.WriteHeader(http.StatusTeapot)
			}))
			req := httptest.NewRequest(http.MethodGet, "/cluster/blobs/x", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if called != tc.pass {
				t.Fatalf("handler called: %v, want %v", called, tc.pass)
			}
			if want := map[bool]int{true: http.StatusTeapot, false: http.StatusUnauthorized}[tc.pass]; rec.Code != want {
				t.Fatalf("status %d, want %d", rec.Code, want)
			}
		})
	}
}

// TestSecretRotation: a secret is rotated replica by replica in three
// rollouts (the new one added second, then moved first, then alone):
// in each, a replica already changed and one not yet changed accept what
// the other sends, both ways. Sending the new one before every replica
// accepts it (skipping the first rollout) would be refused.
func TestSecretRotation(t *testing.T) {
	const old, next = "the-old-cluster-secret", "the-new-cluster-secret"
	steps := []string{old, old + "\n" + next, next + "\n" + old, next}
	accepts := func(setting, from string) bool {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, cluster.HealthPath, nil)
		req.Header.Set("Authorization", "Bearer "+cluster.SendSecret(from))
		cluster.HealthHandler(setting).ServeHTTP(rec, req)
		return rec.Code == http.StatusOK
	}
	for i := 1; i < len(steps); i++ {
		a, b := steps[i-1], steps[i]
		if !accepts(a, b) || !accepts(b, a) {
			t.Errorf("rollout %d: %q and %q refuse each other", i, a, b)
		}
	}
	if accepts(old, next+"\n"+old) {
		t.Errorf("a replica holding only the old secret accepted the new one")
	}
	if got := cluster.Secrets(" a \r\n\n b\n"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Secrets = %q, want [a b]", got)
	}
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k)
		out = append(out, vs...)
	}
	return out
}

// TestCheck: a check succeeds only on a 200 from the peer's handler within
// the timeout; its error never holds the secret.
func TestCheck(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	for _, tc := range []struct {
		name    string
		handler http.Handler
		secret  string
		ok      bool
	}{
		{"the secret", cluster.HealthHandler(secret), secret, true},
		{"wrong secret", cluster.HealthHandler("another cluster's"), secret, false},
		{"missing secret", cluster.HealthHandler(secret), "", false},
		{"5xx", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }), secret, false},
		{"redirect", http.RedirectHandler("http://127.0.0.1:1/cluster/health", http.StatusFound), secret, false},
		{"hang past the timeout", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		}), secret, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer client.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := cluster.Check(ctx, client, srv.Listener.Addr().String(), tc.secret)
			if (err == nil) != tc.ok {
				t.Fatalf("check: %v, want success %v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("the error holds the secret: %v", err)
			}
		})
	}
}

// TestPeerStateObserve: DownAfter consecutive failures mark a peer down,
// a success in between starts the count again, one success marks it up.
func TestPeerStateObserve(t *testing.T) {
	const F, S = false, true
	for _, tc := range []struct {
		name      string
		downAfter int
		outcomes  []bool
		down      []bool
	}{
		{"one failure of two", 2, []bool{F}, []bool{false}},
		{"two failures of two", 2, []bool{F, F}, []bool{false, true}},
		{"a success resets the count", 2, []bool{F, S, F}, []bool{false, false, false}},
		{"one success brings it up", 2, []bool{F, F, F, S}, []bool{false, true, true, false}},
		{"down after one", 1, []bool{F, S, F}, []bool{true, false, true}},
		{"three of three", 3, []bool{F, F, S, F, F, F}, []bool{false, false, false, false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cluster.Observe(tc.downAfter, tc.outcomes); !slices.Equal(got, tc.down) {
				t.Fatalf("down after each outcome: %v, want %v", got, tc.down)
			}
		})
	}
}
