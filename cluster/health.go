package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HealthPath is where every replica answers its peers' health checks.
const HealthPath = "/cluster/health"

// HealthHandler answers a peer's health check: 200 to a GET or HEAD
// carrying "Authorization: Bearer <secret>", 401 to any other credential or
// none (Authenticate), 405 to other methods. Nothing it writes, and no
// error, holds the secret.
//
// It is the same code that Cluster's checks expect, so the two ends cannot
// drift apart; the listener that mounts it at HealthPath (the peer
// listener, which clients never reach) is the caller's.
func HealthHandler(secret string) http.Handler {
	return Authenticate(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
}

// Authenticate passes to next only the requests carrying one of the
// cluster secrets (Secrets) as a bearer token, and answers every other one
// 401 without calling next: the gate of every route a replica serves its
// peers. An empty secret is no secret: every request gets 401.
func Authenticate(secret string, next http.Handler) http.Handler {
	var want [][sha256.Size]byte
	for _, s := range Secrets(secret) {
		want = append(want, sha256.Sum256([]byte(s)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wharf-cluster"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Secrets splits the cluster secret setting into its secrets, one per
// line (blank lines and the spaces around each are dropped). The first
// is the one this replica sends; any of them is accepted. So a secret is
// rotated replica by replica, with no moment when two replicas refuse
// each other: add the new one as a second line everywhere, then make it
// the first everywhere, then drop the old one.
func Secrets(setting string) []string {
	var out []string
	for _, l := range strings.Split(setting, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// SendSecret is the secret a replica sends: the first of Secrets, or ""
// for none.
func SendSecret(setting string) string {
	if s := Secrets(setting); len(s) > 0 {
		return s[0]
	}
	return ""
}

// bearerMatches reports whether header is "Bearer <token>" (the scheme in
// any case, RFC 9110 §11.1) with a token whose sha256 is one of want.
// Comparing the digests in constant time hides each secret's length as
// well as its bytes: subtle.ConstantTimeCompare returns at once on
// unequal lengths. Every one is compared, matched or not.
func bearerMatches(header string, want [][sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, w := range want {
		match |= subtle.ConstantTimeCompare(got[:], w[:])
	}
	return match == 1
}

// check asks peer's HealthHandler once, within ctx; nil means 200.
// The error names the peer and what went wrong, never the secret (which
// travels only in a header).
func check(ctx context.Context, client *http.Client, peer, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+peer+HealthPath, nil)
	if err != nil {
		return fmt.Errorf("health check of %s: %w", peer, err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check of %s: %w", peer, err)
	}
	// Drain a little so the connection is reused; a health answer is
	// tiny, and a peer that sends more gets its connection closed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check of %s: status %d", peer, resp.StatusCode)
	}
	return nil
}

// peerState is what is known of one peer's health.
type peerState struct {
	failures int  // consecutive failed checks
	down     bool // skipped by Rank and Owner
}

// observe records one check's outcome (err nil: success) and reports
// whether the peer went down or came up. downAfter consecutive failures
// mark it down; one success marks it up.
func (s *peerState) observe(err error, downAfter int) (changed bool) {
	if err == nil {
		s.failures = 0
		changed, s.down = s.down, false
		return changed
	}
	s.failures++
	if !s.down && s.failures >= downAfter {
		s.down = true
		return true
	}
	return false
}
