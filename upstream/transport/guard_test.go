package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestClassify is the address classifier's table: every internal range an
// upstream must not send wharf to, in its IPv4, IPv6 and mapped forms, and
// public addresses that must stay reachable.
func TestClassify(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"64:ff9b::127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.254", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:192.168.0.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456:789a::1", "private"},
		{"fec0::1", "private"},
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.254", "shared (CGNAT)"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"::7f00:1", "reserved"}, // IPv4-compatible ::127.0.0.1
		// Public: the neighbours of each range, and well-known hosts.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"11.0.0.1", ""},
		{"192.169.0.1", ""},
		{"169.253.255.255", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"fbff:ffff::1", ""},
		{"fe00::1", ""},
	}
	for _, tt := range tests {
		ip, err := netip.ParseAddr(tt.addr)
		if err != nil {
			t.Fatalf("ParseAddr(%q): %v", tt.addr, err)
		}
		if got := Classify(ip); got != tt.want {
			t.Errorf("Classify(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if got := Classify(netip.Addr{}); got == "" {
		t.Error("the zero address classifies as public")
	}
}

// fakeResolver answers names from a table, so that tests can give names
// public or internal addresses without any DNS.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

// internalService stands for what a hostile upstream aims at (a metadata
// service, an admin port): it counts the requests that reach it.
func internalService(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "internal secret")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// redirector answers every request with a 307 to where(r).
func redirector(t *testing.T, where func(*http.Request) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			io.WriteString(w, "the upstream's own answer")
			return
		}
		http.Redirect(w, r, where(r), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// guarded returns an http.Client as the upstream package builds it: the
// guard over base, and CheckRedirect.
func guarded(t *testing.T, upstreamURL string, base http.RoundTripper, opts GuardOptions) *http.Client {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	opts.Upstream = u
	g, err := NewGuard(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.CloseIdleConnections)
	return &http.Client{Transport: g, CheckRedirect: CheckRedirect}
}

func fetch(c *http.Client, u string) (string, error) {
	return fetchAs(c, KindOther, u)
}

// fetchAs GETs u as a request of kind: a blob goes out through the
// guard's HTTP/1.1 transports (split.go).
func fetchAs(c *http.Client, kind, u string) (string, error) {
	req, err := http.NewRequestWithContext(WithKind(context.Background(), kind), http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newBase() *http.Transport { return http.DefaultTransport.(*http.Transport).Clone() }

// TestGuardRefusesRedirectToInternal: an upstream treated as public that
// redirects to 127.0.0.1 (by address, by "localhost", by a name the
// system resolves) gets ErrTargetRefused, and the internal service is
// never connected to; the upstream's own requests still go through.
// Blobs, which have transports of their own, alike.
func TestGuardRefusesRedirectToInternal(t *testing.T) {
	internal, hits := internalService(t)
	port := internal.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	for _, target := range []string{
		internal.URL + "/internal",
		fmt.Sprintf("http://localhost:%d/internal", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/internal", port),
	} {
		for _, kind := range []string{KindManifest, KindBlob} {
			up := redirector(t, func(*http.Request) string { return target })
			c := guarded(t, up.URL, newBase(), GuardOptions{Network: NetworkPublic})
			if body, err := fetchAs(c, kind, up.URL+"/v2/x/blobs/y"); !errors.Is(err, ErrTargetRefused) {
				t.Errorf("%s redirected to %s: %q, %v; want ErrTargetRefused", kind, target, body, err)
			}
			if body, err := fetchAs(c, kind, up.URL+"/own"); err != nil || body != "the upstream's own answer" {
				t.Errorf("the upstream's own %s request through the guard: %q, %v", kind, body, err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the internal service was reached %d times", n)
	}
}

// TestGuardLetsInternalUpstreamRedirectInternally: an upstream on
// 127.0.0.1 (NetworkAuto) is on the operator's network, and so may its
// CDN be.
func TestGuardLetsInternalUpstreamRedirectInternally(t *testing.T) {
	internal, hits := internalService(t)
	up := redirector(t, func(*http.Request) string { return internal.URL + "/cdn" })
	c := guarded(t, up.URL, newBase(), GuardOptions{})
	if body, err := fetch(c, up.URL+"/v2/x/blobs/y"); err != nil || body != "internal secret" {
		t.Errorf("redirect from an internal upstream: %q, %v", body, err)
	}
	if hits.Load() != 1 {
		t.Errorf("the CDN was reached %d times, want 1", hits.Load())
	}
}

// TestGuardClassifiesUpstreamByName: an upstream named by a host name is
// internal when the name resolves to an internal address; a lookup that
// fails counts as public until one succeeds.
func TestGuardClassifiesUpstreamByName(t *testing.T) {
	res := fakeResolver{
		"registry.lan":     addrs("10.1.2.3"),
		"registry.example": addrs("203.0.113.9"),
		"dual.example":     addrs("203.0.113.10", "192.168.4.4"),
	}
	tests := []struct {
		url      string
		network  Network
		internal bool
	}{
		{"http://registry.lan:5000", NetworkAuto, true},
		{"https://registry.example", NetworkAuto, false},
		{"https://dual.example", NetworkAuto, true},
		{"http://127.0.0.1:5000", NetworkAuto, true},
		{"http://[::1]:5000", NetworkAuto, true},
		{"http://localhost:5000", NetworkAuto, true},
		{"http://registry.localhost", NetworkAuto, true},
		{"https://8.8.8.8", NetworkAuto, false},
		{"https://169.254.169.254", NetworkAuto, true},
		{"http://127.0.0.1:5000", NetworkPublic, false},
		{"https://registry.example", NetworkInternal, true},
		{"https://unknown.example", NetworkAuto, false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		g, err := NewGuard(newBase(), GuardOptions{Upstream: u, Network: tt.network, Resolver: res})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.upstreamInternal(t.Context()); got != tt.internal {
			t.Errorf("%s (network %d): internal = %v, want %v", tt.url, tt.network, got, tt.internal)
		}
	}
	// A failed lookup is not remembered.
	u, _ := url.Parse("https://late.lan")
	g, _ := NewGuard(newBase(), GuardOptions{Upstream: u, Resolver: res})
	if g.upstreamInternal(t.Context()) {
		t.Error("an upstream whose name does not resolve is internal")
	}
	res["late.lan"] = addrs("192.168.7.7")
	if !g.upstreamInternal(t.Context()) {
		t.Error("the failed lookup was remembered")
	}
}

// TestGuardWithProxy: with a proxy (HTTP_PROXY), the proxy on the site's
// network is dialled, a public target is reached through it, and an
// internal target is refused by name before the proxy is asked; for the
// API and for blobs, which have transports of their own.
func TestGuardWithProxy(t *testing.T) {
	var mu sync.Mutex
	var proxied []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy gets absolute URLs; this one plays the CDN itself
		// so that nothing leaves 127.0.0.1.
		mu.Lock()
		proxied = append(proxied, r.URL.Host)
		mu.Unlock()
		io.WriteString(w, "from the CDN")
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	base := newBase()
	base.Proxy = func(r *http.Request) (*url.URL, error) {
		if strings.HasSuffix(r.URL.Hostname(), ".example") {
			return proxyURL, nil
		}
		return nil, nil // NO_PROXY for the upstream on 127.0.0.1
	}
	res := fakeResolver{"cdn.example": addrs("203.0.113.7"), "rebind.example": addrs("203.0.113.8", "127.0.0.1")}
	for _, tt := range []struct {
		target string
		ok     bool
	}{
		{"http://cdn.example/blob", true},
		{"http://rebind.example/blob", false},
		{"http://nowhere.example/blob", false},
	} {
		for _, kind := range []string{KindManifest, KindBlob} {
			up := redirector(t, func(*http.Request) string { return tt.target })
			c := guarded(t, up.URL, base, GuardOptions{Network: NetworkPublic, Resolver: res})
			body, err := fetchAs(c, kind, up.URL+"/v2/x/blobs/y")
			if tt.ok && (err != nil || body != "from the CDN") {
				t.Errorf("%s %s through the proxy: %q, %v", kind, tt.target, body, err)
			}
			if !tt.ok && !errors.Is(err, ErrTargetRefused) {
				t.Errorf("%s %s through the proxy: %q, %v; want ErrTargetRefused", kind, tt.target, body, err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(proxied) != 2 || proxied[0] != "cdn.example" || proxied[1] != "cdn.example" {
		t.Errorf("the proxy was asked for %q, want cdn.example once for the API and once for a blob", proxied)
	}
}

// wrapped is a base transport the guard cannot give a checking dialer.
type wrapped struct{ http.RoundTripper }

// TestGuardNameCheckWithoutDialer: over a base transport that is not an
// *http.Transport, targets are checked by name.
func TestGuardNameCheckWithoutDialer(t *testing.T) {
	internal, hits := internalService(t)
	port := internal.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	res := fakeResolver{"rebind.example": addrs("127.0.0.1")}
	base := newBase()
	for _, target := range []string{internal.URL + "/internal", fmt.Sprintf("http://rebind.example:%d/internal", port)} {
		up := redirector(t, func(*http.Request) string { return target })
		c := guarded(t, up.URL, wrapped{base}, GuardOptions{Network: NetworkPublic, Resolver: res})
		if body, err := fetch(c, up.URL+"/v2/x/blobs/y"); !errors.Is(err, ErrTargetRefused) {
			t.Errorf("redirect to %s: %q, %v; want ErrTargetRefused", target, body, err)
		}
	}
	base.CloseIdleConnections()
	if n := hits.Load(); n != 0 {
		t.Errorf("the internal service was reached %d times", n)
	}
}

// TestCheckRedirect: redirects are bounded in number and kept to http(s).
func TestCheckRedirect(t *testing.T) {
	var hops atomic.Int32
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hops.Add(1)
		http.Redirect(w, r, fmt.Sprintf("%s/hop/%d", loop.URL, n), http.StatusFound)
	}))
	t.Cleanup(loop.Close)
	c := guarded(t, loop.URL, newBase(), GuardOptions{})
	if _, err := fetch(c, loop.URL+"/start"); !errors.Is(err, ErrTargetRefused) {
		t.Errorf("a redirect loop: %v, want ErrTargetRefused", err)
	}
	if n := hops.Load(); n != MaxRedirects+1 {
		t.Errorf("%d requests made in a redirect loop, want %d", n, MaxRedirects+1)
	}
	for _, target := range []string{"file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x"} {
		up := redirector(t, func(*http.Request) string { return target })
		c := guarded(t, up.URL, newBase(), GuardOptions{})
		if _, err := fetch(c, up.URL+"/v2/x/blobs/y"); !errors.Is(err, ErrTargetRefused) {
			t.Errorf("redirect to %s: %v, want ErrTargetRefused", target, err)
		}
	}
}
