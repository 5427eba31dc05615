package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cluster"
)

// start returns a running Cluster, closed when the test ends.
func start(t *testing.T, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serveAt serves h on addr (127.0.0.1:0 for any port), until the test ends
// or the server is closed.
func serveAt(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// answering is a peer whose every health check waits for the test to say
// what to answer: each send on the channel lets one check through. A check
// arrives only once the one before it has been recorded (a round waits for
// its checks, and one peer has one check per round), so after a send the
// state seen is that of every check before it.
func answering(t *testing.T) (addr string, answers chan<- int) {
	ch := make(chan int)
	ok := cluster.HealthHandler(secret)
	srv := serveAt(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case status := <-ch:
			if status == http.StatusOK {
				ok.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(status)
		}
	}))
	return srv.Listener.Addr().String(), ch
}

// waitFor waits, at most 10s, until cond holds of c's members, looking
// again at each change.
func waitFor(t *testing.T, c *cluster.Cluster, what string, cond func([]cluster.Member) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		if cond(c.Members()) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s within 10s; members %+v", what, c.Members())
		}
	}
}

// upIs is a condition: addr is a member, up or down as said.
func upIs(addr string, up bool) func([]cluster.Member) bool {
	return func(ms []cluster.Member) bool {
		i := slices.IndexFunc(ms, func(m cluster.Member) bool { return m.Addr == addr })
		return i >= 0 && ms[i].Up == up
	}
}

func isUp(t *testing.T, c *cluster.Cluster, addr string) bool {
	t.Helper()
	for _, m := range c.Members() {
		if m.Addr == addr {
			return m.Up
		}
	}
	t.Fatalf("%s is no member: %+v", addr, c.Members())
	return false
}

// TestReplicasRankAlike: three replicas, each listing the members in its
// own order (itself included), see the same members and rank every key
// the same way.
func TestReplicasRankAlike(t *testing.T) {
	var all []string
	for range 3 {
		all = append(all, serveAt(t, "127.0.0.1:0", cluster.HealthHandler(secret)).Listener.Addr().String())
	}
	var cs []*cluster.Cluster
	for i, self := range all {
		peers := slices.Concat(all[i:], all[:i]) // a different order each
		cs = append(cs, start(t, cluster.Options{Self: self, Secret: secret, Peers: peers}))
	}
	sorted := slices.Sorted(slices.Values(all))
	for i, c := range cs {
		if got := addrs(c.Members()); !slices.Equal(got, sorted) {
			t.Fatalf("replica %d sees members %v, want %v", i, got, sorted)
		}
		if n := len(c.Members()); n != 3 {
			t.Fatalf("replica %d counts %d members", i, n)
		}
	}
	for _, k := range keys(1000) {
		want := addrs(cs[0].Rank(k))
		for i, c := range cs[1:] {
			if got := addrs(c.Rank(k)); !slices.Equal(got, want) {
				t.Fatalf("key %s: replica 0 ranks %v, replica %d ranks %v", k, want, i+1, got)
			}
			if o := c.Owner(k); o.Addr != want[0] {
				t.Fatalf("key %s: replica %d's owner %s, rank first %s", k, i+1, o.Addr, want[0])
			}
		}
	}
}

// TestPeerDownAfterFailuresAndUpAgain: a peer stays up through DownAfter-1
// failed checks, goes down at the DownAfter-th, and comes up at the first
// success.
func TestPeerDownAfterFailuresAndUpAgain(t *testing.T) {
	const downAfter = 3
	peer, answers := answering(t)
	c := start(t, cluster.Options{Self: "127.0.0.1:1", Secret: secret, Peers: []string{peer}, CheckEvery: time.Millisecond, DownAfter: downAfter})
	for i := range downAfter {
		answers <- http.StatusInternalServerError
		// Check i+1 was taken, so the i checks before it are recorded.
		if !isUp(t, c, peer) {
			t.Fatalf("peer down after %d failed checks, want %d", i, downAfter)
		}
	}
	waitFor(t, c, "peer down", upIs(peer, false))
	if slices.ContainsFunc(c.Rank("k"), func(m cluster.Member) bool { return m.Addr == peer }) {
		t.Fatal("Rank holds a peer that is down")
	}
	answers <- http.StatusOK
	waitFor(t, c, "peer up", upIs(peer, true))
	if !slices.ContainsFunc(c.Rank("k"), func(m cluster.Member) bool { return m.Addr == peer }) {
		t.Fatal("Rank lacks a peer that is up")
	}
}

// TestStoppedPeerGoesDownAndComesBack with a real listener that goes away
// (connection refused) and comes back on the same address.
func TestStoppedPeerGoesDownAndComesBack(t *testing.T) {
	srv := serveAt(t, "127.0.0.1:0", cluster.HealthHandler(secret))
	peer := srv.Listener.Addr().String()
	c := start(t, cluster.Options{Self: "127.0.0.1:1", Secret: secret, Peers: []string{peer}, CheckEvery: 5 * time.Millisecond})
	srv.Close()
	waitFor(t, c, "stopped peer down", upIs(peer, false))
	serveAt(t, peer, cluster.HealthHandler(secret))
	waitFor(t, c, "restarted peer up", upIs(peer, true))
}

// TestHungPeerGoesDown: a check that does not answer within CheckTimeout
// is a failure.
func TestHungPeerGoesDown(t *testing.T) {
	peer, _ := answering(t) // never answered
	c := start(t, cluster.Options{Self: "127.0.0.1:1", Secret: secret, Peers: []string{peer}, CheckEvery: time.Millisecond, CheckTimeout: 10 * time.Millisecond})
	waitFor(t, c, "hung peer down", upIs(peer, false))
}

// TestWrongSecretIsAFailure: a peer of another cluster answers 401, which
// marks it down, and neither secret reaches the log.
func TestWrongSecretIsAFailure(t *testing.T) {
	const theirs = "the-other-cluster's-secret"
	peer := serveAt(t, "127.0.0.1:0", cluster.HealthHandler(theirs)).Listener.Addr().String()
	logged := &logBuffer{down: make(chan struct{})}
	log := logrus.New()
	log.SetOutput(logged)
	c := start(t, cluster.Options{Self: "127.0.0.1:1", Secret: secret, Peers: []string{peer}, CheckEvery: time.Millisecond, Logger: log})
	waitFor(t, c, "peer with another secret down", upIs(peer, false))
	select { // the line is written just after the change is published
	case <-logged.down:
	case <-time.After(10 * time.Second):
		t.Fatal("no log line says the peer is down")
	}
	text := logged.String()
	if !strings.Contains(text, "401") {
		t.Fatalf("the log does not say why the peer is down: %q", text)
	}
	if strings.Contains(text, secret) || strings.Contains(text, theirs) {
		t.Fatalf("the log holds a secret: %q", text)
	}
}

// logBuffer keeps what the logger writes and closes down at the first
// line saying a peer is down.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	down chan struct{}
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytes.Contains(p, []byte("peer down")) && !strings.Contains(l.buf.String(), "peer down") {
		close(l.down)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestMarkFailedSkipsPeerAtOnce: a caller's failed request takes the peer
// out of the ranking before any check; the next successful check puts it
// back.
func TestMarkFailedSkipsPeerAtOnce(t *testing.T) {
	peer, answers := answering(t)
	const self = "127.0.0.1:1"
	c := start(t, cluster.Options{Self: self, Secret: secret, Peers: []string{peer}, CheckEvery: time.Millisecond})
	answers <- http.StatusOK // the first check: the peer is up, and no other check ends until the next send
	k := keys(100)[slices.IndexFunc(keys(100), func(k string) bool { return c.Owner(k).Addr == peer })]
	c.MarkFailed(peer)
	if o := c.Owner(k); o.Addr != self {
		t.Fatalf("owner of %s after MarkFailed(%s): %s, want self", k, peer, o.Addr)
	}
	if r := c.Rank(k); len(r) != 1 || !r[0].Self {
		t.Fatalf("rank after MarkFailed: %+v, want self alone", r)
	}
	c.MarkFailed(self)          // ignored: self is always up
	c.MarkFailed("10.9.9.9:99") // ignored: no member
	c.MarkFailed("not an addr") // ignored
	if n := len(c.Members()); n != 2 {
		t.Fatalf("%d members after MarkFailed of strangers, want 2", n)
	}
	answers <- http.StatusOK
	waitFor(t, c, "peer up after a successful check", upIs(peer, true))
	if o := c.Owner(k); o.Addr != peer {
		t.Fatalf("owner of %s once the peer is up: %s, want %s", k, o.Addr, peer)
	}
}

// fakeDNS answers lookups from what the test set, and lets the test wait
// for lookups of the current answer.
type fakeDNS struct {
	mu     sync.Mutex
	host   string
	ips    []netip.Addr
	err    error
	served int           // lookups of the current answer
	tick   chan struct{} // closed at each lookup
}

func newFakeDNS(host string) *fakeDNS { return &fakeDNS{host: host, tick: make(chan struct{})} }

func (f *fakeDNS) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.served++
	close(f.tick)
	f.tick = make(chan struct{})
	if host != f.host {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(f.ips), f.err
}

func (f *fakeDNS) set(err error, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ips, f.err, f.served = nil, err, 0
	for _, ip := range ips {
		f.ips = append(f.ips, netip.MustParseAddr(ip))
	}
}

// await waits until the current answer was looked up n times. The
// cluster applies a lookup before it makes the next, so with n = 2 the
// first answer is applied.
func (f *fakeDNS) await(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		served, tick := f.served, f.tick
		f.mu.Unlock()
		if served >= n {
			return
		}
		select {
		case <-tick:
		case <-deadline.C:
			t.Fatalf("%d lookups within 10s, want %d", served, n)
		}
	}
}

// TestDNSReresolution: members found by DNS come and go with its answers;
// self counts once; a failed lookup keeps the last answer; a name with no
// records leaves self alone.
func TestDNSReresolution(t *testing.T) {
	dns := newFakeDNS("wharf-peers.test")
	dns.set(nil, "127.0.0.2", "127.0.0.3")
	const self = "127.0.0.1:5001"
	c := start(t, cluster.Options{
		Self: self, Secret: secret, DNS: "wharf-peers.test:5001", Lookup: dns.lookup,
		ResolveEvery: time.Millisecond, CheckEvery: time.Hour,
	})
	membersAre := func(want ...string) func([]cluster.Member) bool {
		return func(ms []cluster.Member) bool { return slices.Equal(addrs(ms), want) }
	}
	waitFor(t, c, "the first answer", membersAre(self, "127.0.0.2:5001", "127.0.0.3:5001"))

	for _, step := range []struct {
		name string
		err  error
		ips  []string
		want []string
	}{
		{"one leaves, one joins", nil, []string{"127.0.0.3", "127.0.0.4"}, []string{self, "127.0.0.3:5001", "127.0.0.4:5001"}},
		{"self among the records counts once", nil, []string{"127.0.0.1", "127.0.0.4"}, []string{self, "127.0.0.4:5001"}},
		{"IPv4-mapped and IPv6", nil, []string{"::ffff:127.0.0.5", "::1"}, []string{self, "127.0.0.5:5001", "[::1]:5001"}},
		{"a failed lookup keeps the last answer", errors.New("i/o timeout"), nil, []string{self, "127.0.0.5:5001", "[::1]:5001"}},
		{"no records leaves self", &net.DNSError{Err: "no such host", Name: "wharf-peers.test", IsNotFound: true}, nil, []string{self}},
	} {
		dns.set(step.err, step.ips...)
		dns.await(t, 2)
		if got := addrs(c.Members()); !slices.Equal(got, step.want) {
			t.Fatalf("%s: members %v, want %v", step.name, got, step.want)
		}
	}
}

// TestOptionsAreChecked: New names every bad field, and never the secret.
func TestOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts cluster.Options
		want []string // in the error
	}{
		{"nothing", cluster.Options{}, []string{"Self", "Secret"}},
		{"self without port", cluster.Options{Self: "10.0.0.1", Secret: secret}, []string{"Self"}},
		{"self with a bad port", cluster.Options{Self: "10.0.0.1:http", Secret: secret}, []string{"Self", "port"}},
		{"a bad peer", cluster.Options{Self: "10.0.0.1:5001", Secret: secret, Peers: []string{"10.0.0.2:5001", ":5001"}}, []string{"Peers[1]"}},
		{"a secret a header cannot carry", cluster.Options{Self: "10.0.0.1:5001", Secret: secret[:4] + "\x00" + secret[4:]}, []string{"Secret"}},
		{"only blank lines", cluster.Options{Self: "10.0.0.1:5001", Secret: "\n\n"}, []string{"Secret"}},
		{"a bad DNS name", cluster.Options{Self: "10.0.0.1:5001", Secret: secret, DNS: "wharf-peers"}, []string{"DNS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cluster.New(tc.opts)
			if err == nil {
				_ = c.Close()
				t.Fatal("New accepted bad options")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error holds the secret: %q", err)
			}
		})
	}
}

// TestAddressesAreCanonical: replicas that spell an address differently
// still name the member alike.
func TestAddressesAreCanonical(t *testing.T) {
	c := start(t, cluster.Options{
		Self: "[::ffff:10.0.0.1]:5001", Secret: secret, CheckEvery: time.Hour,
		Peers: []string{"Wharf-1.Peers.test:5001", "[2001:DB8::0001]:5001", "10.0.0.1:5001"},
	})
	want := []string{"10.0.0.1:5001", "[2001:db8::1]:5001", "wharf-1.peers.test:5001"}
	if got := addrs(c.Members()); !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if c.Self() != "10.0.0.1:5001" {
		t.Fatalf("Self() = %s", c.Self())
	}
}

// TestCloseLeavesNoGoroutine: Close stops the loop with checks in flight
// and leaves no goroutine, however often it is called.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	hung := serveAt(t, "127.0.0.1:0", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	up := serveAt(t, "127.0.0.1:0", cluster.HealthHandler(secret))
	dns := newFakeDNS("peers.test")
	c := start(t, cluster.Options{
		Self: "127.0.0.1:1", Secret: secret, DNS: "peers.test:5001", Lookup: dns.lookup,
		Peers:        []string{hung.Listener.Addr().String(), up.Listener.Addr().String()},
		ResolveEvery: time.Millisecond, CheckEvery: time.Millisecond, CheckTimeout: time.Hour,
	})
	dns.await(t, 1) // the loop runs; its first round of checks follows, and hangs on the first peer
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	hung.Close()
	up.Close()
	goleak.VerifyNone(t)
}
