package upstreamtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	// Registered with distribution by their init functions.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Registry is a running distribution registry.
type Registry struct {
	URL  string // http://127.0.0.1:port
	Host string // 127.0.0.1:port, for image references
	// Username and Password are the credentials the registry accepts
	// (WithBasicAuth, WithTokenAuth); empty when it is anonymous.
	Username string
	Password string
	// TokenRealm and TokenService are what the registry's Bearer
	// challenges name (WithTokenAuth only).
	TokenRealm   string
	TokenService string
	// Dir holds the registry's content (WithDiskStorage only).
	Dir string

	srv    *httptest.Server
	app    *handlers.App
	issuer *tokenIssuer
	once   sync.Once
}

// Option configures NewRegistry.
type Option func(*regConfig)

type regConfig struct {
	auth       string // "", "htpasswd", "token"
	user, pass string
	disk       bool
}

// WithDiskStorage keeps the registry's content in files under
// t.TempDir() instead of memory: distribution's in-memory driver copies
// a blob on every write it appends, so pushing a blob of hundreds of MiB
// to it takes minutes.
func WithDiskStorage() Option {
	return func(c *regConfig) { c.disk = true }
}

// WithBasicAuth protects the registry with distribution's htpasswd access
// controller: Basic challenges, user/pass the only account (bcrypt, in a
// file under t.TempDir()). Anonymous requests get 401.
func WithBasicAuth(user, pass string) Option {
	return func(c *regConfig) { c.auth, c.user, c.pass = "htpasswd", user, pass }
}

// WithTokenAuth protects the registry with distribution's token access
// controller, the scheme Docker Hub uses: 401 with a Bearer challenge
// naming a token issuer (at /token on the registry's address, see
// TokenRealm), which verifies user/pass (Basic) and signs JWTs
// that distribution checks against the issuer's certificate. user/pass
// get pull and push on any repository they ask for; anonymous requests
// get pull; wrong credentials get 401 from the issuer.
func WithTokenAuth(user, pass string) Option {
	return func(c *regConfig) { c.auth, c.user, c.pass = "token", user, pass }
}

// NewRegistry starts a distribution registry on 127.0.0.1 with in-memory
// storage. It is closed by t.Cleanup.
//
// Distribution logs through logrus's standard logger, which it offers no
// other way to reach, and at error level for every 404: NewRegistry lowers
// that logger to fatal level so test output stays readable. (wharf's own
// code never logs through the standard logger.)
func NewRegistry(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var rc regConfig
	for _, o := range opts {
		o(&rc)
	}
	logrus.StandardLogger().SetLevel(logrus.FatalLevel)

	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			// The purger is a goroutine per registry; tests do not need it.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			"delete":      configuration.Parameters{"enabled": true},
		},
	}
	r := &Registry{Username: rc.user, Password: rc.pass}
	if rc.disk {
		r.Dir = t.TempDir()
		delete(cfg.Storage, "inmemory")
		cfg.Storage["filesystem"] = configuration.Parameters{"rootdirectory": r.Dir}
	}
	cfg.HTTP.Secret = randomHex(t, 16)
	cfg.Log.AccessLog.Disabled = true

	// The listener comes first: token auth needs the address for its realm.
	r.srv = httptest.NewUnstartedServer(nil)
	r.URL = "http://" + r.srv.Listener.Addr().String()
	r.Host = r.srv.Listener.Addr().String()
	switch rc.auth {
	case "htpasswd":
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{
			"realm": "wharf-test",
			"path":  writeHtpasswd(t, rc.user, rc.pass),
		}}
	case "token":
		r.issuer = newTokenIssuer(t, rc.user, rc.pass)
		r.TokenRealm, r.TokenService = r.URL+"/token", tokenService
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm":          r.TokenRealm,
			"service":        r.TokenService,
			"issuer":         tokenIssuerName,
			"rootcertbundle": r.issuer.certPath,
		}}
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.app = handlers.NewApp(ctx, cfg)
	mux := http.NewServeMux()
	mux.Handle("/", r.app)
	if r.issuer != nil {
		mux.HandleFunc("/token", r.issuer.serveToken)
	}
	r.srv.Config.Handler = mux
	r.srv.Start()
	t.Cleanup(func() {
		r.Close()
		cancel()
	})
	return r
}

// Close stops the registry (and its token issuer). It is safe to call more
// than once, and is called by t.Cleanup anyway; call it early to make the
// upstream disappear.
func (r *Registry) Close() {
	r.once.Do(func() {
		r.srv.CloseClientConnections()
		r.srv.Close()
		_ = r.app.Shutdown()
	})
}

// TokenRequests is the number of requests the token issuer has answered
// (with a token or not); 0 without WithTokenAuth.
func (r *Registry) TokenRequests() int {
	if r.issuer == nil {
		return 0
	}
	return r.issuer.requests()
}

// Ref returns "<Host>/<ref>", a reference go-containerregistry can use.
func (r *Registry) Ref(ref string) string { return r.Host + "/" + ref }

// LeakOptions are the goleak options tests need when they use NewRegistry:
// distribution starts a notification broadcaster per registry and gives
// no way to stop it.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
	}
}

func writeHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("upstreamtest: bcrypt: %v", err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatalf("upstreamtest: %v", err)
	}
	return path
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("upstreamtest: %v", err)
	}
	return hex.EncodeToString(b)
}
