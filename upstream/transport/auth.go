package transport

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
)

// Auth answers an upstream's 401 challenges and retries the request once
// with credentials:
//
//   - "Bearer realm=…,service=…,scope=…": a token from Tokens for that
//     realm, service and scope. Without a scope in the challenge the scope
//     is "repository:<repo>:pull" (":pull,push" for writes), read from the
//     request path.
//   - "Basic realm=…": the configured username and password; with none,
//     the 401 is returned as it is.
//
// Auth remembers what the registry asked for, and attaches credentials
// before being asked on later requests: Basic credentials, or a token for
// the request's scope, cached or, once the registry is known to want
// tokens, fetched first (as docker does after its ping), so that a new
// repository or an expired token costs the token's round trip and not a
// 401's as well. A warm client thus makes one round trip per request. A
// cached token the registry refuses is dropped and fetched anew, still
// within the one retry; one fetched for this very request is not fetched
// twice.
//
// If that early fetch fails (the realm moved and the old token server is
// gone or refuses, or it is down), the request goes out without a token
// all the same: the registry's answer is the only way to learn of a new
// realm, or that it has switched to Basic or to anonymous access. Its
// challenge is then answered as on a cold client; one naming the realm
// that just failed gets that failure back rather than a second fetch.
//
// Only requests to the registry's own scheme and host are touched.
// Anything else, above all the CDN a blob is redirected to, passes through
// without credentials, so they never reach another host. A request with a
// body is replayed only if GetBody can give the body again; otherwise it
// gets its 401 back.
type Auth struct {
	next   http.RoundTripper
	origin string // scheme://host of the registry
	creds  Credentials
	tokens *Tokens

	mu      sync.Mutex
	scheme  string // "bearer" or "basic", once a challenge said so
	realm   string // of the last Bearer challenge
	service string
}

// NewAuth wraps next for the registry at base (its scheme and host are
// what matter), answering challenges with creds and tokens.
func NewAuth(next http.RoundTripper, base *url.URL, creds Credentials, tokens *Tokens) (*Auth, error) {
	if next == nil || tokens == nil {
		return nil, errors.New("transport: NewAuth: nil next transport or tokens")
	}
	if base == nil || base.Host == "" {
		return nil, errors.New("transport: NewAuth: base URL without host")
	}
	return &Auth{next: next, origin: origin(base), creds: creds, tokens: tokens}, nil
}

func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// sent records which credentials went out with an attempt.
type sent struct {
	basic bool
	key   TokenKey
	token string
	fresh bool // token was fetched for this request, not found cached
	// failed is why the early fetch of key's token failed; the request
	// went out without one.
	failed error
}

// RoundTrip implements http.RoundTripper.
func (a *Auth) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) != a.origin || req.Header.Get("Authorization") != "" {
		return a.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	s := a.attach(r)
	if s.failed != nil && req.Context().Err() != nil {
		closeBody(req)
		return nil, s.failed
	}
	resp, err := a.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		if err == nil && s.failed != nil && resp.StatusCode < http.StatusInternalServerError && resp.StatusCode != http.StatusTooManyRequests {
			// Served without the token it asked for before: the registry
			// went anonymous. Stop fetching tokens first; a new challenge
			// brings them back.
			a.forgetScheme("bearer")
		}
		return resp, err
	}
	if !replayableBody(req) {
		return resp, nil
	}
	for _, ch := range Challenges(resp.Header) {
		switch ch.Scheme {
		case "bearer":
			return a.bearer(req, resp, ch, s)
		case "basic":
			return a.basic(req, resp, s)
		}
	}
	return resp, nil
}

// attach puts credentials learnt from earlier challenges on r, fetching
// the token for r's scope if none is cached. If that fetch fails, r goes
// without a token and sent.failed says why.
func (a *Auth) attach(r *http.Request) sent {
	a.mu.Lock()
	scheme, realm, service := a.scheme, a.realm, a.service
	a.mu.Unlock()
	switch scheme {
	case "basic":
		if !a.creds.Empty() {
			a.creds.setBasic(r)
			return sent{basic: true}
		}
	case "bearer":
		key := TokenKey{Realm: realm, Service: service, Scope: pathScope(r)}
		if key.Scope == "" {
			return sent{}
		}
		tok, fetched, err := a.tokens.Token(r.Context(), key)
		if err != nil {
			return sent{key: key, failed: err}
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return sent{key: key, token: tok, fresh: fetched}
	}
	return sent{}
}

// forgetScheme drops what the registry was known to want, if still
// scheme, so that requests go out bare until it challenges again.
func (a *Auth) forgetScheme(scheme string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.scheme == scheme {
		a.scheme = ""
	}
}

func (a *Auth) bearer(req *http.Request, resp *http.Response, ch Challenge, s sent) (*http.Response, error) {
	key := TokenKey{Realm: ch.Params["realm"], Service: ch.Params["service"], Scope: ch.Params["scope"]}
	if key.Scope == "" {
		key.Scope = pathScope(req)
	}
	if key.Realm == "" {
		return resp, nil // nowhere to ask: the 401 stands
	}
	if err := a.checkRealm(key.Realm); err != nil {
		drain(resp.Body)
		return nil, err
	}
	a.mu.Lock()
	a.scheme, a.realm, a.service = "bearer", key.Realm, key.Service
	a.mu.Unlock()
	if s.failed != nil && s.key == key {
		// The token server this challenge names has just failed for this
		// very scope: hand on its answer (retry copes with a 503) rather
		// than ask it twice.
		drain(resp.Body)
		return tokenFailure(req, s.failed)
	}
	if s.fresh && s.key == key {
		// Refused a token fetched for this very request: another from
		// the same server would be refused alike (no access, or no
		// such repository, which Docker Hub answers with 401).
		a.tokens.Forget(s.key, s.token)
		return resp, nil
	}
	if s.token != "" {
		// The registry refused a token we had cached (revoked, or expired
		// early): never offer it again.
		a.tokens.Forget(s.key, s.token)
		if s.key != key {
			a.tokens.Forget(key, s.token)
		}
	}
	drain(resp.Body)
	tok, _, err := a.tokens.Token(req.Context(), key)
	if err != nil {
		return tokenFailure(req, err)
	}
	r, err := rewound(req)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err = a.next.RoundTrip(r)
	if err == nil && resp.StatusCode != http.StatusUnauthorized {
		// attach looks tokens up by the scope of the path; when the
		// challenge named another, file the token under that one too so
		// the next request on this path goes out with it.
		if derived := pathScope(req); derived != "" && derived != key.Scope {
			a.tokens.Share(key, TokenKey{Realm: key.Realm, Service: key.Service, Scope: derived})
		}
	}
	return resp, err
}

// tokenFailure is RoundTrip's answer to req when its token could not be
// had: a token server's refusal as the response, anything else as the
// error.
func tokenFailure(req *http.Request, err error) (*http.Response, error) {
	var te *TokenError
	if errors.As(err, &te) {
		return te.response(req), nil
	}
	return nil, err
}

func (a *Auth) basic(req *http.Request, resp *http.Response, s sent) (*http.Response, error) {
	if a.creds.Empty() || s.basic {
		return resp, nil // nothing (else) to offer
	}
	a.mu.Lock()
	a.scheme = "basic"
	a.mu.Unlock()
	drain(resp.Body)
	r, err := rewound(req)
	if err != nil {
		return nil, err
	}
	a.creds.setBasic(r)
	return a.next.RoundTrip(r)
}

// ErrRealmRefused is returned when a Bearer challenge names a token realm
// Auth will not send credentials to. Retrying does not help.
var ErrRealmRefused = errors.New("token realm refused")

// checkRealm refuses realms that would leak credentials or reach what a
// registry has no business pointing us at: a scheme other than http(s),
// plain http when the registry is https (a downgrade that would send
// credentials in the clear), and link-local addresses such as the cloud
// metadata service 169.254.169.254. Private and loopback addresses are
// allowed, unlike in go-containerregistry: wharf's upstreams are
// configured by the operator and often live on private networks.
func (a *Auth) checkRealm(realm string) error {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q is not a URL", ErrRealmRefused, realm)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrRealmRefused, realm)
	case u.Scheme == "http" && strings.HasPrefix(a.origin, "https:"):
		return fmt.Errorf("%w: %q: plain http for an https registry", ErrRealmRefused, realm)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil &&
		(ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()) {
		return fmt.Errorf("%w: %q: link-local address", ErrRealmRefused, realm)
	}
	return nil
}

// bodyless reports whether req can be sent a second time as it is.
func bodyless(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody
}

// replayableBody reports whether req can be sent again after a challenge:
// it has no body, or GetBody gives a fresh copy of it (a push of a blob
// from a file, a manifest from memory).
func replayableBody(req *http.Request) bool {
	return bodyless(req) || req.GetBody != nil
}

// rewound clones req for a second attempt, with a fresh body.
func rewound(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if bodyless(req) {
		return r, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("transport: replay body: %w", err)
	}
	r.Body = body
	return r, nil
}

// pathScope derives the token scope of a registry API request from its
// path, /v2/<repo>/{manifests,blobs,tags}/…: "repository:<repo>:pull" for
// reads, "repository:<repo>:pull,push" for writes, "repository:<repo>:delete"
// for deletes, "" for other paths (/v2/ itself, the catalog).
func pathScope(r *http.Request) string {
	p := r.URL.Path
	i := strings.Index(p, "/v2/")
	if i < 0 {
		return ""
	}
	p = p[i+len("/v2/"):]
	end := -1
	for _, sep := range []string{"/manifests/", "/blobs/", "/tags/"} {
		end = max(end, strings.LastIndex(p, sep))
	}
	if end <= 0 {
		return ""
	}
	action := "pull"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete:
		action = "delete" // what distribution asks for a delete (write-through)
	default:
		action = "pull,push"
	}
	return "repository:" + p[:end] + ":" + action
}
