package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// wharf's own access control. Every request has a principal: a user of
// the htpasswd file, authenticated with HTTP Basic, or the anonymous
// client. What a principal may do to a repository is authrules.go's
// concern; this file finds out who the principal is, at a bounded cost.
//
// Basic rather than a token service: it is what `docker login` and every
// registry client speak against a plain registry, and it needs no signing
// keys. The one client it does not suit is the docker engine pulling
// without stored credentials: it refuses a Basic challenge it has nothing
// to answer with ("no basic auth credentials"), so docker hosts log in
// even where anonymous pulls are allowed; containerd, podman/skopeo and
// go-containerregistry pull anonymously.

// Passwords looks up a user's bcrypt hash: an htpasswd file.
type Passwords interface {
	Hash(user string) (hash []byte, ok bool)
}

// Coster is an optional capability of Passwords: the bcrypt cost of its
// hashes, so that refusing an unknown user costs what refusing a known one
// does (no user enumeration by timing). Without it DefaultCost is assumed.
type Coster interface {
	Cost() int
}

// Anonymous is the name rules use for clients without credentials. An
// htpasswd file may not define a user of this name.
const Anonymous = "anonymous"

// AuthOptions say who may use wharf. The zero value (and a nil
// Options.Auth) is a read-only mirror: anyone may pull, nobody may push
// or delete.
type AuthOptions struct {
	// Passwords are the users; nil: there are none, every client is
	// anonymous and credentials are ignored.
	Passwords Passwords
	// AnonymousPull lets clients without credentials read: manifests,
	// blobs, tags, the catalog, the status page and /metrics. Without
	// Passwords reads are always open.
	AnonymousPull bool
	// AnonymousPush lets clients without credentials push and delete (and
	// so read): for a lab or CI network, never for a site's mirror.
	AnonymousPush bool
	// Rules grant users read or write by repository prefix, the anonymous
	// client included (as Anonymous); none lets every user read and write
	// everything, and the anonymous client what the switches above allow
	// (see authrules.go).
	Rules []Rule
	// RememberFor is how long a verified password is remembered, so that
	// bcrypt (tens of milliseconds by design) runs once per client, not
	// once per layer request. Default 1m.
	RememberFor time.Duration
	// FailedLogins is how many wrong passwords one client address may
	// send per FailedLoginWindow before its logins are refused with 429
	// until the window ends. Default 10; negative: no limit.
	FailedLogins      int
	FailedLoginWindow time.Duration // default 1m
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Errors of authentication and authorization; errors.go maps them.
var (
	errAuthRequired     = errors.New("authentication required")
	errAuthFailed       = errors.New("invalid credentials")
	errDenied           = errors.New("requested access to the resource is denied")
	errUnknownNamespace = errors.New("no upstream is configured for this registry")
	// errPushClosed: an anonymous push or delete where no switch opens
	// them. A 401 like errAuthRequired, with a message saying why.
	errPushClosed = &wrapped{msg: "pushes and deletes need credentials on this registry (it is a read-only mirror unless the operator opens pushes)", err: errAuthRequired}
)

// challenge is the WWW-Authenticate header sent with every 401 wharf
// raises itself; docker login answers it with the user's credentials.
const challenge = `Basic realm="wharf"`

// maxRemembered bounds the verification cache; past it, the cache is
// emptied (an attacker cycling passwords gains nothing: failures are not
// remembered).
const maxRemembered = 4096

type authenticator struct {
	opts AuthOptions
	rules
	failures *loginLimiter
	// bcryptSlots bounds the bcrypt comparisons running at once to the
	// CPUs: a flood of logins queues instead of starving every request.
	bcryptSlots chan struct{}

	dummyMu   sync.Mutex
	dummy     []byte // compared against for unknown users
	dummyCost int

	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time // hash of user, password and stored hash → valid until
}

func newAuthenticator(o AuthOptions) (*authenticator, error) {
	if o.RememberFor <= 0 {
		o.RememberFor = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FailedLogins == 0 {
		o.FailedLogins = 10
	}
	if o.FailedLoginWindow <= 0 {
		o.FailedLoginWindow = time.Minute
	}
	for _, r := range o.Rules {
		if r.User == "" {
			return nil, errors.New("proxy: a rule without a user")
		}
	}
	a := &authenticator{
		opts: o, rules: newRules(o.Rules), verified: map[[sha256.Size]byte]time.Time{},
		bcryptSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
	}
	if o.FailedLogins > 0 {
		a.failures = newLoginLimiter(o.FailedLogins, o.FailedLoginWindow)
	}
	return a, nil
}

// user returns who sent r: "" for anonymous (no Authorization header, or
// Basic with an empty user and password, which some clients send when
// they have nothing; any credentials where there are no users), or
// errAuthFailed, or a *loginRefused while the client's address is over
// its failed-login budget.
func (a *authenticator) user(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == "" || a.opts.Passwords == nil {
		return "", nil
	}
	user, password, ok := r.BasicAuth()
	switch {
	case !ok:
		return "", errAuthFailed // another scheme (Bearer): not ours
	case user == "" && password == "":
		return "", nil
	}
	addr := clientAddr(r)
	now := a.opts.Now()
	if wait := a.failures.blocked(addr, now); wait > 0 {
		return "", &loginRefused{retryAfter: wait}
	}
	ok, err := a.verify(r.Context(), user, password)
	if err != nil {
		return "", err
	}
	if !ok {
		a.failures.fail(addr, now)
		return "", errAuthFailed
	}
	return user, nil
}

// clientAddr is the address failed logins are counted against: the
// connection's peer. X-Forwarded-For is not trusted: any client can write it.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// verify checks password against user's bcrypt hash, remembering success
// for RememberFor. The key covers the stored hash, so a changed password
// in the file ends the old one's grace at once. An unknown user costs one
// comparison against a dummy hash of the file's cost.
func (a *authenticator) verify(ctx context.Context, user, password string) (bool, error) {
	if user == Anonymous {
		return false, nil // reserved; the htpasswd loader refuses it too
	}
	hash, known := a.opts.Passwords.Hash(user)
	if !known {
		if err := a.compare(ctx, a.dummyHash(), password); err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, err
		}
		return false, nil
	}
	h := sha256.New()
	for _, part := range []string{user, password, string(hash)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var key [sha256.Size]byte
	copy(key[:], h.Sum(nil))
	now := a.opts.Now()
	a.mu.Lock()
	until, ok := a.verified[key]
	a.mu.Unlock()
	if ok && now.Before(until) {
		return true, nil
	}
	switch err := a.compare(ctx, hash, password); {
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	case err != nil && ctx.Err() != nil:
		return false, err
	case err != nil:
		return false, nil // a malformed hash: no password matches it
	}
	a.mu.Lock()
	if len(a.verified) >= maxRemembered {
		clear(a.verified)
	}
	a.verified[key] = now.Add(a.opts.RememberFor)
	a.mu.Unlock()
	return true, nil
}

// compare runs one bcrypt comparison in a free slot, or gives up when the
// client leaves first.
func (a *authenticator) compare(ctx context.Context, hash []byte, password string) error {
	select {
	case a.bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.bcryptSlots }()
	return bcrypt.CompareHashAndPassword(hash, []byte(password))
}

// dummyHash is a hash of the Passwords' cost, made again when the cost
// changes (the file was edited).
func (a *authenticator) dummyHash() []byte {
	cost := bcrypt.DefaultCost
	if c, ok := a.opts.Passwords.(Coster); ok && c.Cost() >= bcrypt.MinCost && c.Cost() <= bcrypt.MaxCost {
		cost = c.Cost()
	}
	a.dummyMu.Lock()
	defer a.dummyMu.Unlock()
	if a.dummy == nil || a.dummyCost != cost {
		a.dummy, _ = bcrypt.GenerateFromPassword([]byte("wharf has no such user"), cost)
		a.dummyCost = cost
	}
	return a.dummy
}

// anonymousReads reports whether clients without credentials may read at
// all (rules may still narrow what).
func (a *authenticator) anonymousReads() bool {
	return a.opts.Passwords == nil || a.opts.AnonymousPull || a.opts.AnonymousPush
}

// admit authenticates r before routing: it records the user for the
// access log and returns the 401 error for wrong credentials, for an
// anonymous request where anonymous clients may not read at all, and for
// an anonymous GET /v2/ when there are users (the ping docker login sends
// first: it must see the challenge to send the credentials). What a
// principal may do to a repository is decided after routing (authorize).
// /healthz is always open.
func (a *authenticator) admit(r *http.Request, info *reqInfo) error {
	if r.URL.Path == "/healthz" {
		return nil
	}
	user, err := a.user(r)
	if err != nil {
		return err
	}
	info.user = user
	switch {
	case user != "":
		return nil
	case !a.anonymousReads():
		return errAuthRequired
	case a.opts.Passwords != nil && r.URL.Path == "/v2/":
		return errAuthRequired
	}
	return nil
}

// equalUser compares user names in constant time; names are not secret,
// but it costs nothing.
func equalUser(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
