package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrTargetRefused is returned (wrapped) when an upstream sends wharf
// somewhere it will not go: a redirect or token realm that leads to an
// internal address (see Classify) while the upstream itself is public, a
// redirect to a scheme other than http(s), or too many redirects.
// Retrying does not help.
var ErrTargetRefused = errors.New("target refused")

// MaxRedirects bounds the redirects followed for one request. Registries
// use one (to a CDN or object store), sometimes two.
const MaxRedirects = 5

// Network says where an upstream is, which decides where its redirects and
// token realms may lead.
type Network int

const (
	// NetworkAuto classifies the upstream's URL host: an IP literal by
	// Classify, "localhost" and *.localhost as loopback, any other name by
	// resolving it (internal if any of its addresses is).
	NetworkAuto Network = iota
	// NetworkPublic treats the upstream as on the internet: its redirects
	// and realms may not reach internal addresses.
	NetworkPublic
	// NetworkInternal treats the upstream as on the site's own network:
	// its redirects and realms may go anywhere it could.
	NetworkInternal
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Upstream is the registry's base URL. Requests to its scheme and host
	// are the upstream's own and go out through the base transport as they
	// are.
	Upstream *url.URL
	// Network is where the upstream is; default NetworkAuto.
	Network Network
	// Resolver resolves the upstream's host name (NetworkAuto) and a
	// target's that must be checked by name. Default net.DefaultResolver.
	Resolver Resolver
}

// Guard keeps an upstream on the internet from aiming wharf at the site's
// own network (SSRF): a redirect to http://127.0.0.1:8500/ or
// http://169.254.169.254/, or a Bearer realm there, is refused with
// ErrTargetRefused before any byte is sent to it. It is the bottom of the
// stack, so that every hop of a redirect and every token fetch passes
// through it.
//
// Requests go one of three ways:
//
//   - To the upstream's own scheme and host: through base, its dialer,
//     proxy and TLS settings as they are. The operator chose that host.
//   - Anywhere else, when the upstream is itself internal (an upstream on
//     127.0.0.1 in tests, a registry on the LAN): through base as well.
//     The upstream's network is then the operator's own, and its CDN or
//     token server is expected to live there too.
//   - Anywhere else, when the upstream is public: through a clone of base
//     whose dialer refuses, in net.Dialer.Control, a connection to an
//     internal address. The check is on the address actually connected
//     to, after resolution, so a name that resolves to 127.0.0.1
//     ("localhost", a wildcard DNS service) and a name whose DNS answer
//     changes between a check and the dial (DNS rebinding) are caught
//     alike, and every address Happy Eyeballs tries is checked.
//
// A proxy from the environment (HTTP_PROXY, HTTPS_PROXY) still works: the
// proxy's own address is the operator's and is dialled unchecked, and
// since the proxy, not wharf, then resolves and connects to the target,
// the target is checked by name instead (every address it resolves to
// must be public). A redirect straight to the proxy's own address (when
// NO_PROXY exempts it from proxying) reaches the proxy: the operator's
// machine, which wharf talks to anyway.
//
// The same name check is all that is possible when base is not an
// *http.Transport with a replaceable dialer (a test's custom transport);
// it is open to DNS rebinding, the dial check is not.
//
// Below the guard, an *http.Transport base is split (split.go): blob GETs
// and uploads go through a clone of it without HTTP/2, the rest through
// it, and the checking clone is split the same way, so that both ways out
// are guarded alike. Any other base carries every kind as it is.
//
// Whether the upstream is internal is decided once (see Network): an IP
// literal or "localhost" at once, a name on first use by resolving it. A
// failed lookup counts as public for that request and is tried again on
// the next.
type Guard struct {
	own      http.RoundTripper // base, split by kind if an *http.Transport (split.go)
	foreign  *byKind           // base's clone with a checking dialer, split by kind; nil if base is not an *http.Transport
	origin   string
	upstream string // the upstream's host name, for NetworkAuto
	network  Network
	resolver Resolver

	mu       sync.Mutex
	decided  bool
	internal bool

	proxies sync.Map // host:port of proxies the foreign transport was told to use
}

// NewGuard wraps base for the upstream in opts.
func NewGuard(base http.RoundTripper, opts GuardOptions) (*Guard, error) {
	if base == nil {
		return nil, errors.New("transport: NewGuard: nil base transport")
	}
	if opts.Upstream == nil || opts.Upstream.Host == "" {
		return nil, errors.New("transport: NewGuard: upstream URL without host")
	}
	g := &Guard{
		own:      base,
		origin:   origin(opts.Upstream),
		upstream: opts.Upstream.Hostname(),
		network:  opts.Network,
		resolver: opts.Resolver,
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if t, ok := base.(*http.Transport); ok {
		g.own = splitByKind(t)
		//lint:ignore SA1019 a dialer of the caller's own, deprecated field or not, is one the guard cannot check
		if t.Dial == nil && t.DialTLS == nil && t.DialTLSContext == nil {
			g.foreign = splitByKind(g.checkingClone(t))
		}
	}
	return g, nil
}

// checkingClone returns a clone of t that refuses to connect to internal
// addresses except its proxies, and checks proxied targets by name.
func (g *Guard) checkingClone(t *http.Transport) *http.Transport {
	checked := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refuseInternal}
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c := t.Clone()
	c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, ok := g.proxies.Load(strings.ToLower(addr)); ok {
			return plain.DialContext(ctx, network, addr)
		}
		return checked.DialContext(ctx, network, addr)
	}
	if proxy := t.Proxy; proxy != nil {
		c.Proxy = func(req *http.Request) (*url.URL, error) {
			p, err := proxy(req)
			if err != nil || p == nil {
				return p, err
			}
			if err := g.checkName(req.Context(), req.URL); err != nil {
				return nil, err
			}
			g.proxies.Store(strings.ToLower(proxyAddr(p)), struct{}{})
			return p, nil
		}
	}
	return c
}

// refuseInternal is the checking dialer's Control: it runs on the address
// about to be connected to, after name resolution.
func refuseInternal(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot tell what %q is", ErrTargetRefused, address)
	}
	if class := Classify(ap.Addr()); class != "" {
		return fmt.Errorf("%w: %s is a %s address and the upstream is not on this network", ErrTargetRefused, address, class)
	}
	return nil
}

// proxyAddr is the host:port the transport dials for proxy p.
func proxyAddr(p *url.URL) string {
	if p.Port() != "" {
		return p.Host
	}
	port := map[string]string{"https": "443", "socks5": "1080", "socks5h": "1080"}[p.Scheme]
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(p.Hostname(), port)
}

// RoundTrip implements http.RoundTripper.
func (g *Guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) == g.origin || g.upstreamInternal(req.Context()) {
		return g.own.RoundTrip(req)
	}
	if g.foreign != nil {
		return g.foreign.RoundTrip(req)
	}
	if err := g.checkName(req.Context(), req.URL); err != nil {
		closeBody(req)
		return nil, err
	}
	return g.own.RoundTrip(req)
}

// CloseIdleConnections closes both transports' idle connections.
func (g *Guard) CloseIdleConnections() {
	if c, ok := g.own.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	if g.foreign != nil {
		g.foreign.CloseIdleConnections()
	}
}

// upstreamInternal reports whether the upstream is on an internal network,
// deciding it on first use (see Network).
func (g *Guard) upstreamInternal(ctx context.Context) bool {
	switch g.network {
	case NetworkPublic:
		return false
	case NetworkInternal:
		return true
	}
	g.mu.Lock()
	decided, internal := g.decided, g.internal
	g.mu.Unlock()
	if decided {
		return internal
	}
	addrs, err := g.lookup(ctx, g.upstream)
	if err != nil {
		return false // public for now; decided on a later request
	}
	internal = false
	for _, a := range addrs {
		internal = internal || Classify(a) != ""
	}
	g.mu.Lock()
	g.decided, g.internal = true, internal
	g.mu.Unlock()
	return internal
}

// checkName refuses u if its host is, or resolves to, an internal address.
func (g *Guard) checkName(ctx context.Context, u *url.URL) error {
	addrs, err := g.lookup(ctx, u.Hostname())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTargetRefused, u.Hostname(), err)
	}
	for _, a := range addrs {
		if class := Classify(a); class != "" {
			return fmt.Errorf("%w: %s is a %s address and the upstream is not on this network", ErrTargetRefused, u.Host, class)
		}
	}
	return nil
}

// lookup returns host's addresses: an IP literal as itself, "localhost"
// and its subdomains as loopback (RFC 6761), anything else from the
// resolver.
func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return []netip.Addr{netip.IPv6Loopback()}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	return addrs, err
}

// CheckRedirect is the upstream http.Client's redirect policy: at most
// MaxRedirects hops, each to an http or https URL. Where the hop may
// connect is the Guard's business, at dial time.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrTargetRefused, MaxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: redirect to a %q URL", ErrTargetRefused, req.URL.Scheme)
	}
	return nil
}

// closeBody closes a request body that will not be sent, as a
// RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
