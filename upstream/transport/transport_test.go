package transport

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestChallenges(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   []Challenge
	}{
		{"docker hub bearer",
			[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`},
			[]Challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}}}},
		{"basic", []string{`Basic realm="Registry Realm"`},
			[]Challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{"two in one header, spaces and tokens",
			[]string{`Basic realm=x , Bearer realm="https://a/t", error="invalid_token"`},
			[]Challenge{{"basic", map[string]string{"realm": "x"}}, {"bearer", map[string]string{"realm": "https://a/t", "error": "invalid_token"}}}},
		{"two headers", []string{`Basic realm="a"`, `Bearer realm="b"`},
			[]Challenge{{"basic", map[string]string{"realm": "a"}}, {"bearer", map[string]string{"realm": "b"}}}},
		{"escaped quote, case", []string{`BEARER Realm="a\"b",Scope="repository:x:pull,push"`},
			[]Challenge{{"bearer", map[string]string{"realm": `a"b`, "scope": "repository:x:pull,push"}}}},
		{"unterminated quote", []string{`Bearer realm="https://a`},
			[]Challenge{{"bearer", map[string]string{"realm": "https://a"}}}},
		{"scheme only", []string{`Negotiate`}, []Challenge{{"negotiate", map[string]string{}}}},
		{"garbage", []string{`=,=,"`}, nil},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add("WWW-Authenticate", v)
			}
			if got := Challenges(h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Challenges(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"100;w=21600", 100, true},
		{"76", 76, true},
		{" 5 ;w=60", 5, true},
		{"", 0, false},
		{"NaN", 0, false},
		{"-1;w=1", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRateLimit(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRateLimit(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPathScope(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/v2/library/alpine/manifests/latest", "repository:library/alpine:pull"},
		{"HEAD", "/v2/a/b/c/blobs/sha256:abc", "repository:a/b/c:pull"},
		{"GET", "/v2/foo/tags/list", "repository:foo:pull"},
		{"GET", "/prefix/v2/foo/tags/list", "repository:foo:pull"},
		// Names containing the endpoint words: the last one decides.
		{"GET", "/v2/blobs/manifests/manifests/v1", "repository:blobs/manifests:pull"},
		{"GET", "/v2/tags/blobs/sha256:abc", "repository:tags:pull"},
		{"GET", "/v2/x/tags/y/tags/list", "repository:x/tags/y:pull"},
		{"PUT", "/v2/foo/manifests/v1", "repository:foo:pull,push"},
		{"POST", "/v2/foo/blobs/uploads/", "repository:foo:pull,push"},
		{"DELETE", "/v2/foo/manifests/v1", "repository:foo:delete"},
		{"GET", "/v2/", ""},
		{"GET", "/v2/_catalog", ""},
		{"GET", "/cdn/blob", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "http://registry"+tt.path, nil)
		if got := pathScope(r); got != tt.want {
			t.Errorf("pathScope(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestCheckRealm(t *testing.T) {
	tests := []struct {
		registry, realm string
		ok              bool
	}{
		{"https://registry-1.docker.io", "https://auth.docker.io/token", true},
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000/token", true},
		{"http://10.0.0.5:5000", "http://10.0.0.6/token", true},
		{"https://registry.example", "http://auth.example/token", false},
		{"https://registry.example", "file:///etc/passwd", false},
		{"https://registry.example", "https://169.254.169.254/latest/meta-data", false},
		{"https://registry.example", "https://[fe80::1]/token", false},
		{"https://registry.example", "https://0.0.0.0/token", false},
		{"https://registry.example", "not a url", false},
	}
	for _, tt := range tests {
		base, _ := url.Parse(tt.registry)
		tokens, _ := NewTokens(http.DefaultTransport, Credentials{})
		a, err := NewAuth(http.DefaultTransport, base, Credentials{}, tokens)
		if err != nil {
			t.Fatal(err)
		}
		err = a.checkRealm(tt.realm)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRealmRefused)) {
			t.Errorf("checkRealm(%q) for %s = %v, want ok=%v", tt.realm, tt.registry, err, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	rt, err := NewRetry(http.DefaultTransport, RetryOptions{Backoff: 250 * time.Millisecond, MaxRetries: 20})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := range 20 {
		full := min(250*time.Millisecond<<attempt, MaxBackoff)
		for range 50 {
			if d := rt.backoff(attempt); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}

// TestTokens covers what token servers send besides distribution's shape:
// access_token only, no expires_in, a refusal.
func TestTokens(t *testing.T) {
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		switch r.URL.Query().Get("scope") {
		case "oauth":
			fmt.Fprint(w, `{"access_token":"at","expires_in":3600}`)
		case "short":
			fmt.Fprint(w, `{"token":"st"}`)
		case "empty":
			fmt.Fprint(w, `{}`)
		case "slow":
			time.Sleep(50 * time.Millisecond)
			fmt.Fprint(w, `{"token":"slow"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"details":"incorrect username or password"}`)
		}
	}))
	defer srv.Close()
	tr := srv.Client().Transport
	defer srv.Client().CloseIdleConnections()
	tokens, err := NewTokens(tr, Credentials{Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tokens.now = func() time.Time { return now }
	key := func(scope string) TokenKey { return TokenKey{Realm: srv.URL, Service: "s", Scope: scope} }

	if tok, fetched, err := tokens.Token(t.Context(), key("oauth")); err != nil || tok != "at" || !fetched {
		t.Errorf("access_token: %q, fetched %v, %v", tok, fetched, err)
	}
	if tok, fetched, err := tokens.Token(t.Context(), key("oauth")); err != nil || tok != "at" || fetched {
		t.Errorf("access_token again: %q, fetched %v (want cached), %v", tok, fetched, err)
	}
	if tok, _, err := tokens.Token(t.Context(), key("short")); err != nil || tok != "st" {
		t.Errorf("token: %q, %v", tok, err)
	}
	if _, _, err := tokens.Token(t.Context(), key("empty")); err == nil {
		t.Error("a response without a token was accepted")
	}
	var te *TokenError
	if _, _, err := tokens.Token(t.Context(), key("wrong")); !errors.As(err, &te) || te.Status != http.StatusUnauthorized {
		t.Errorf("refusal: %v, want a *TokenError 401", err)
	}
	// Without expires_in a token lives 60 s, used until 10 s before.
	now = now.Add(49 * time.Second)
	if _, ok := tokens.Cached(key("short")); !ok {
		t.Error("the 60 s token is gone after 49 s")
	}
	now = now.Add(2 * time.Second)
	if _, ok := tokens.Cached(key("short")); ok {
		t.Error("the 60 s token is still used 9 s before it expires")
	}
	if _, ok := tokens.Cached(key("oauth")); !ok {
		t.Error("the 1 h token is gone after 51 s")
	}
	tokens.Forget(key("oauth"), "other")
	if _, ok := tokens.Cached(key("oauth")); !ok {
		t.Error("Forget dropped a token that was not the one refused")
	}
	tokens.Forget(key("oauth"), "at")
	if _, ok := tokens.Cached(key("oauth")); ok {
		t.Error("Forget kept the refused token")
	}
	if n := fetches.Load(); n != 4 {
		t.Errorf("%d fetches, want 4", n)
	}

	// Concurrent requests for one key share one fetch.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if tok, _, err := tokens.Token(t.Context(), key("slow")); err != nil || tok != "slow" {
				t.Errorf("concurrent Token: %q, %v", tok, err)
			}
		})
	}
	wg.Wait()
	if n := fetches.Load(); n != 5 {
		t.Errorf("%d fetches after 10 concurrent Token calls, want 5", n)
	}
}
