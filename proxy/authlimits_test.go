package proxy

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/metrics"
)

// countingPasswords counts look-ups: a login refused by the limiter must
// not reach the password file (nor bcrypt after it).
type countingPasswords struct {
	passwords
	lookups atomic.Int32
	cost    int
}

func (c *countingPasswords) Hash(user string) ([]byte, bool) {
	c.lookups.Add(1)
	return c.passwords.Hash(user)
}

func (c *countingPasswords) Cost() int { return c.cost }

// TestFailedLoginsAreLimitedPerAddress: past FailedLogins wrong passwords
// in a window, an address's logins are answered 429 with Retry-After
// before any password is looked at — the right one too — while another
// address and anonymous pulls from the same one go on; the window's end
// lifts it.
func TestFailedLoginsAreLimitedPerAddress(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	users := &countingPasswords{passwords: passwords{"alice": hashOf(t, "right", bcrypt.MinCost)}}
	m := metrics.New(prometheus.NewRegistry())
	h, err := New(Options{Store: &recorder{}, Upstream: hub{}, Metrics: m, Auth: &AuthOptions{
		Passwords: users, AnonymousPull: true, FailedLogins: 3, FailedLoginWindow: time.Minute,
		Now: func() time.Time { return now },
	}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(addr, user, pw string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v2/alpine/manifests/3", nil)
		req.RemoteAddr = addr + ":40000"
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for i := 0; i < 3; i++ {
		if w := send("192.0.2.1", "alice", "wrong"); w.Code != 401 {
			t.Fatalf("wrong password %d: status %d, want 401", i+1, w.Code)
		}
	}
	before := users.lookups.Load()
	w := send("192.0.2.1", "alice", "right")
	if w.Code != 429 || !strings.Contains(w.Body.String(), `"TOOMANYREQUESTS"`) || w.Header().Get("Retry-After") != "60" {
		t.Errorf("login past the limit: %d Retry-After %q %s, want 429 TOOMANYREQUESTS Retry-After 60", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := testutil.ToFloat64(m.LimitHits.WithLabelValues("login")); n != 1 {
		t.Errorf("wharf_limit_hits_total{limit=\"login\"} = %v, want 1", n)
	}
	if n := users.lookups.Load() - before; n != 0 {
		t.Errorf("a refused login looked up %d passwords, want none (no bcrypt either)", n)
	}
	if w := send("192.0.2.2", "alice", "right"); w.Code != 404 {
		t.Errorf("another address: status %d, want 404 from the store", w.Code)
	}
	if w := send("192.0.2.1", "", ""); w.Code != 404 {
		t.Errorf("anonymous pull from the limited address: status %d, want 404 from the store", w.Code)
	}
	now = now.Add(45 * time.Second)
	if w := send("192.0.2.1", "alice", "right"); w.Header().Get("Retry-After") != "15" {
		t.Errorf("15 s before the window ends: Retry-After %q, want 15", w.Header().Get("Retry-After"))
	}
	now = now.Add(15 * time.Second)
	if w := send("192.0.2.1", "alice", "right"); w.Code != 404 {
		t.Errorf("after the window: status %d, want 404 from the store", w.Code)
	}
}

// TestUnknownUsersCostWhatKnownOnesDo: the dummy hash an unknown user is
// compared against has the file's bcrypt cost, so a wrong user name takes
// as long as a wrong password (no user enumeration by timing), and the
// reserved name "anonymous" never logs in, even if a file defines it.
func TestUnknownUsersCostWhatKnownOnesDo(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 6} {
		users := &countingPasswords{passwords: passwords{"alice": hashOf(t, "pw", cost)}, cost: cost}
		a, err := newAuthenticator(AuthOptions{Passwords: users})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := a.verify(t.Context(), "mallory", "pw"); ok {
			t.Fatal("unknown user accepted")
		}
		if got, err := bcrypt.Cost(a.dummyHash()); err != nil || got != cost {
			t.Errorf("dummy hash cost %d (%v), want the file's %d", got, err, cost)
		}
	}
	a, err := newAuthenticator(AuthOptions{Passwords: passwords{"alice": hashOf(t, "pw", bcrypt.MinCost)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bcrypt.Cost(a.dummyHash()); got != bcrypt.DefaultCost {
		t.Errorf("without a cost to go by: dummy cost %d, want bcrypt's default %d", got, bcrypt.DefaultCost)
	}
	reserved, err := newAuthenticator(AuthOptions{Passwords: passwords{Anonymous: hashOf(t, "pw", bcrypt.MinCost)}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := reserved.verify(t.Context(), Anonymous, "pw"); ok {
		t.Error(`a user named "anonymous" logged in`)
	}
}
