package transport

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// tokenServer issues "tok-<n>" for any scope, or answers status when it
// is set; it counts what it is asked.
type tokenServer struct {
	*httptest.Server
	status atomic.Int32 // 0: issue tokens
	asked  atomic.Int32
}

func newTokenServer(t *testing.T, name string) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.asked.Add(1)
		if s := ts.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		fmt.Fprintf(w, `{"token":%q,"expires_in":3600}`, name)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// movingRegistry wants what want says: a token from realm ("Bearer
// <token>" where token is the realm's name), Basic alice:s3cret, or
// nothing. It stands for a registry that moves its token server or
// changes how it authenticates, which the real one cannot do live.
type movingRegistry struct {
	*httptest.Server
	mu        sync.Mutex
	want      string // "bearer", "basic" or "" (anonymous)
	realm     string // URL of the token server
	token     string // the token it issues
	bare      atomic.Int32
	served    atomic.Int32
	challenge atomic.Int32
}

func newMovingRegistry(t *testing.T) *movingRegistry {
	t.Helper()
	reg := &movingRegistry{}
	reg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		want, realm, token := reg.want, reg.realm, reg.token
		reg.mu.Unlock()
		got := r.Header.Get("Authorization")
		if got == "" {
			reg.bare.Add(1)
		}
		ok := want == "" ||
			want == "bearer" && got == "Bearer "+token ||
			want == "basic" && r.Header.Get("Authorization") == basicHeader("alice", "s3cret")
		if !ok {
			reg.challenge.Add(1)
			if want == "bearer" {
				w.Header().Set("Www-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="reg"`, realm))
			} else {
				w.Header().Set("Www-Authenticate", `Basic realm="reg"`)
			}
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.served.Add(1)
		io.WriteString(w, "manifest")
	}))
	t.Cleanup(reg.Close)
	return reg
}

func (reg *movingRegistry) set(want string, ts *tokenServer, token string) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.want, reg.token = want, token
	if ts != nil {
		reg.realm = ts.URL + "/token"
	}
}

func basicHeader(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// authGet GETs repo's manifest through a and returns the status.
func authGet(t *testing.T, a *Auth, base, repo string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/v2/"+repo+"/manifests/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.RoundTrip(req)
	if err != nil {
		return 0
	}
	drain(resp.Body)
	return resp.StatusCode
}

// TestAuthRecoversFromStaleRealm: once a registry is known to want
// tokens, a token for a new scope is fetched from the realm it last named
// before the request goes out. When that fetch fails (the token server
// moved and the old one is gone or answers 404, or it is down), the
// request still reaches the registry, whose answer says what it wants
// now: a new realm, Basic, or nothing.
func TestAuthRecoversFromStaleRealm(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(old *tokenServer)              // what becomes of the old token server
		move     func(*movingRegistry, *tokenServer) // what the registry wants now
		want     int                                 // the status of the request for a new scope
		wantBare int32                               // requests the registry saw without credentials
	}{
		{"realm moved, old server gone", func(old *tokenServer) { old.Close() },
			func(r *movingRegistry, nts *tokenServer) { r.set("bearer", nts, "new") }, 200, 1},
		{"realm moved, old server 404", func(old *tokenServer) { old.status.Store(404) },
			func(r *movingRegistry, nts *tokenServer) { r.set("bearer", nts, "new") }, 200, 1},
		{"switched to anonymous", func(old *tokenServer) { old.Close() },
			func(r *movingRegistry, _ *tokenServer) { r.set("", nil, "") }, 200, 1},
		{"switched to Basic", func(old *tokenServer) { old.status.Store(404) },
			func(r *movingRegistry, _ *tokenServer) { r.set("basic", nil, "") }, 200, 1},
		// The token server is down but has not moved: the request goes
		// out all the same, and its challenge gets the token server's
		// 503 (for retry to retry), not a second fetch.
		{"token server down", func(old *tokenServer) { old.status.Store(503) },
			func(*movingRegistry, *tokenServer) {}, 503, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newMovingRegistry(t)
			old, nts := newTokenServer(t, "old"), newTokenServer(t, "new")
			reg.set("bearer", old, "old")
			next := &http.Transport{}
			t.Cleanup(next.CloseIdleConnections)
			u, _ := url.Parse(reg.URL)
			creds := Credentials{Username: "alice", Password: "s3cret"}
			tokens, err := NewTokens(next, creds)
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewAuth(next, u, creds, tokens)
			if err != nil {
				t.Fatal(err)
			}
			if got := authGet(t, a, reg.URL, "app/one"); got != 200 {
				t.Fatalf("first request: %d, want 200", got)
			}
			tt.break_(old)
			tt.move(reg, nts)
			reg.bare.Store(0)
			oldAsked := old.asked.Load()
			if got := authGet(t, a, reg.URL, "app/two"); got != tt.want {
				t.Errorf("request for a new scope: %d, want %d", got, tt.want)
			}
			if n := reg.bare.Load(); n != tt.wantBare {
				t.Errorf("the registry saw %d requests without credentials, want %d", n, tt.wantBare)
			}
			if tt.want == 503 {
				if n := old.asked.Load() - oldAsked; n != 1 {
					t.Errorf("the failing token server was asked %d times, want 1", n)
				}
				return
			}
			// Later requests go straight to what the registry wants now.
			reg.bare.Store(0)
			reg.challenge.Store(0)
			for _, repo := range []string{"app/two", "app/three"} {
				if got := authGet(t, a, reg.URL, repo); got != 200 {
					t.Errorf("%s afterwards: %d, want 200", repo, got)
				}
			}
			if n := reg.challenge.Load(); n != 0 {
				t.Errorf("%d challenges after the registry was relearnt, want 0", n)
			}
		})
	}
}
