package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// DefaultTokenLifetime applies when a token response names no
	// expires_in, as the distribution token spec prescribes.
	DefaultTokenLifetime = 60 * time.Second
	// tokenMargin is how long before its expiry a token stops being
	// used, so it does not expire between being attached and checked.
	tokenMargin = 10 * time.Second
	// tokenFetchTimeout bounds a token fetch that outlives the request
	// that started it (other requests may be waiting on it).
	tokenFetchTimeout = time.Minute
	// maxTokenBody bounds what is read of a token response.
	maxTokenBody = 1 << 20
	// maxTokenLifetime (seconds) keeps a silly expires_in from overflowing.
	maxTokenLifetime = 24 * 60 * 60
	// sweepAt is the cache size at which expired tokens are pruned.
	sweepAt = 256
)

// TokenKey identifies a cached token: registries issue tokens per realm
// (the token server), service (the registry's audience) and scope
// ("repository:library/alpine:pull").
type TokenKey struct {
	Realm   string
	Service string
	Scope   string
}

// TokenError is a token server's answer other than 200. Auth hands it on
// as the response to the original request, so that a 401 for wrong
// credentials reads as the upstream refusing them and a 503 is retried.
type TokenError struct {
	Status int
	Header http.Header
	Body   []byte // the start of the body, for the error message
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("token server answered %d", e.Status)
}

// response rebuilds the token server's answer for req.
func (e *TokenError) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status)),
		StatusCode:    e.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        e.Header,
		Body:          io.NopCloser(strings.NewReader(string(e.Body))),
		ContentLength: int64(len(e.Body)),
		Request:       req,
	}
}

// Tokens fetches registry tokens from a realm and caches them until
// shortly before they expire. Concurrent requests for one key share one
// fetch. Tokens never appear in logs or errors.
type Tokens struct {
	next  http.RoundTripper
	creds Credentials
	now   func() time.Time

	group singleflight.Group
	mu    sync.Mutex
	cache map[TokenKey]cachedToken
}

type cachedToken struct {
	value   string
	expires time.Time
}

// NewTokens fetches tokens through next with creds (anonymous if empty).
func NewTokens(next http.RoundTripper, creds Credentials) (*Tokens, error) {
	if next == nil {
		return nil, errors.New("transport: NewTokens: nil next transport")
	}
	return &Tokens{next: next, creds: creds, now: time.Now, cache: map[TokenKey]cachedToken{}}, nil
}

// Cached returns a cached, unexpired token for key.
func (t *Tokens) Cached(key TokenKey) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.cache[key]
	if !ok || !t.now().Before(c.expires) {
		return "", false
	}
	return c.value, true
}

// Forget drops the cached token for key if it is still value: the
// registry refused it, so the next request fetches a new one.
func (t *Tokens) Forget(key TokenKey, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.cache[key]; ok && c.value == value {
		delete(t.cache, key)
	}
}

// Share caches the token cached for from under to as well, with the same
// expiry.
func (t *Tokens) Share(from, to TokenKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.cache[from]; ok {
		t.cache[to] = c
	}
}

// Token returns a token for key from the cache or the realm, and whether
// it was fetched for this call (or a concurrent one it joined) rather
// than found cached. A token server's refusal comes back as a
// *TokenError.
func (t *Tokens) Token(ctx context.Context, key TokenKey) (tok string, fetched bool, err error) {
	if tok, ok := t.Cached(key); ok {
		return tok, false, nil
	}
	// The fetch may serve other waiters, so it runs under its own bounded
	// context; each waiter still stops when its own context ends.
	ch := t.group.DoChan(key.Realm+"\x00"+key.Service+"\x00"+key.Scope, func() (any, error) {
		// A fetch that ended between the look-up above and this call
		// has cached its token: one fetch per key however the burst's
		// requests interleave.
		if tok, ok := t.Cached(key); ok {
			return fetchedToken{tok, false}, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		tok, err := t.fetch(fctx, key)
		return fetchedToken{tok, true}, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", false, res.Err
		}
		ft := res.Val.(fetchedToken)
		return ft.value, ft.fetched, nil
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// fetchedToken is what Token's shared fetch hands its waiters.
type fetchedToken struct {
	value   string
	fetched bool
}

// tokenResponse is the token server's JSON: "token", or "access_token"
// from OAuth2-style servers, which may send both.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (t *Tokens) fetch(ctx context.Context, key TokenKey) (string, error) {
	u, err := url.Parse(key.Realm)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("token realm %q is not an http(s) URL", key.Realm)
	}
	q := u.Query()
	if key.Service != "" {
		q.Set("service", key.Service)
	}
	for _, s := range strings.Fields(key.Scope) { // several scopes are several parameters
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(WithKind(ctx, KindToken), http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	if !t.creds.Empty() {
		t.creds.setBasic(req)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("token request to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return "", fmt.Errorf("token response from %s: %w", u.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &TokenError{Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body}
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", fmt.Errorf("token response from %s: %w", u.Host, err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", fmt.Errorf("token response from %s holds no token", u.Host)
	}
	life := DefaultTokenLifetime
	if tr.ExpiresIn > 0 {
		life = time.Duration(min(tr.ExpiresIn, maxTokenLifetime)) * time.Second
	}
	t.store(key, tok, life)
	return tok, nil
}

// store caches tok for its lifetime less a margin (at most half of it).
func (t *Tokens) store(key TokenKey, tok string, life time.Duration) {
	margin := min(tokenMargin, life/2)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cache) >= sweepAt {
		for k, c := range t.cache {
			if !now.Before(c.expires) {
				delete(t.cache, k)
			}
		}
	}
	t.cache[key] = cachedToken{value: tok, expires: now.Add(life - margin)}
}
