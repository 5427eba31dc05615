package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// wharf's own access control, when Options.Auth is set: clients
// authenticate with HTTP Basic as a user of an htpasswd file (bcrypt),
// anonymous clients may pull if AnonymousPull says so, and pushes and
// deletes always need a user. Which repositories a user may read or write
// is authrules.go's concern.
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

// AuthOptions turn on access control.
type AuthOptions struct {
	Passwords Passwords // required
	// AnonymousPull lets clients without credentials read: manifests,
	// blobs, tags, the catalog, the status page and /metrics.
	AnonymousPull bool
	// Rules grant users read or write by repository prefix; none lets
	// every user read and write everything (see authrules.go).
	Rules []Rule
	// RememberFor is how long a verified password is remembered, so that
	// bcrypt (tens of milliseconds by design) runs once per client, not
	// once per layer request. Default 1m.
	RememberFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Errors of authentication and authorization; errors.go maps them.
var (
	errAuthRequired     = errors.New("authentication required")
	errAuthFailed       = errors.New("invalid credentials")
	errDenied           = errors.New("requested access to the resource is denied")
	errUnknownNamespace = errors.New("no upstream is configured for this registry")
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
	dummyOnce sync.Once
	dummy     []byte // a hash to compare against for unknown users, so they cost as much as known ones

	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time // hash of user, password and stored hash → valid until
}

func newAuthenticator(o AuthOptions) (*authenticator, error) {
	if o.Passwords == nil {
		return nil, errors.New("proxy: AuthOptions.Passwords is required")
	}
	if o.RememberFor <= 0 {
		o.RememberFor = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &authenticator{opts: o, rules: newRules(o.Rules), verified: map[[sha256.Size]byte]time.Time{}}, nil
}

// user returns who sent r: "" for anonymous (no Authorization header, or
// Basic with an empty user and password, which some clients send when
// they have nothing), or errAuthFailed.
func (a *authenticator) user(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == "" {
		return "", nil
	}
	user, password, ok := r.BasicAuth()
	switch {
	case !ok:
		return "", errAuthFailed // another scheme (Bearer): not ours
	case user == "" && password == "":
		return "", nil
	case !a.verify(user, password):
		return "", errAuthFailed
	}
	return user, nil
}

// verify checks password against user's bcrypt hash, remembering success
// for RememberFor. The key covers the stored hash, so a changed password
// in the file ends the old one's grace at once.
func (a *authenticator) verify(user, password string) bool {
	hash, known := a.opts.Passwords.Hash(user)
	if !known {
		a.dummyOnce.Do(func() { a.dummy, _ = bcrypt.GenerateFromPassword([]byte("wharf"), bcrypt.DefaultCost) })
		bcrypt.CompareHashAndPassword(a.dummy, []byte(password)) // about the time a known user takes
		return false
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
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= maxRemembered {
		clear(a.verified)
	}
	a.verified[key] = now.Add(a.opts.RememberFor)
	a.mu.Unlock()
	return true
}

// admit authenticates r before routing: it records the user for the
// access log and returns the 401 error for wrong credentials, for a
// request that needs a user and has none, and for an anonymous GET /v2/
// (the ping docker login sends first: it must see the challenge to send
// the credentials). /healthz is always open.
func (a *authenticator) admit(r *http.Request, info *reqInfo) error {
	if r.URL.Path == "/healthz" {
		return nil
	}
	user, err := a.user(r)
	if err != nil {
		return err
	}
	info.user = user
	if user != "" {
		return nil
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if a.opts.AnonymousPull && read && r.URL.Path != "/v2/" && !isUploadPath(r.URL.Path) {
		return nil
	}
	return errAuthRequired
}

// isUploadPath tells an upload session's GET (part of a push) from reads.
func isUploadPath(p string) bool { return strings.Contains(p, "/blobs/uploads/") }

// equalUser compares user names in constant time; names are not secret,
// but it costs nothing.
func equalUser(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
