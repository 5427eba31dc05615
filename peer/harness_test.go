package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

const testSecret = "a-cluster-secret-of-32-bytes-ok!"

// spy is a Cluster that records MarkFailed and, for fault tests, may
// rank by a fixed order (the real cluster's otherwise).
type spy struct {
	real  *cluster.Cluster // nil with order
	self  string
	order []string // fixed ranking, self included

	mu     sync.Mutex
	failed []string
}

func (s *spy) Rank(key string) []cluster.Member {
	if s.real != nil {
		return s.real.Rank(key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cluster.Member
	for _, a := range s.order {
		if !slices.Contains(s.failed, a) {
			out = append(out, cluster.Member{Addr: a, Self: a == s.self, Up: true})
		}
	}
	return out
}

func (s *spy) Members() []cluster.Member {
	if s.real != nil {
		return s.real.Members()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cluster.Member
	for _, a := range s.order {
		out = append(out, cluster.Member{Addr: a, Self: a == s.self, Up: !slices.Contains(s.failed, a)})
	}
	return out
}

func (s *spy) MarkFailed(peer string) {
	s.mu.Lock()
	s.failed = append(s.failed, peer)
	s.mu.Unlock()
	if s.real != nil {
		s.real.MarkFailed(peer)
	}
}

func (s *spy) Failed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failed)
}

// replica is one in-process wharf replica: a cache whose origin is a
// peer.Origin, and its peer listener on 127.0.0.1.
type replica struct {
	addr    string
	cache   *cache.Cache
	spy     *spy
	reg     *prometheus.Registry // metrics' registry
	metrics *metrics.Metrics
	srv     *http.Server
	served  chan struct{}
	origin  *Origin // the cache's origin: the registry behind peer routing
}

// closePeer stops the replica's peer listener and its connections, as
// a dead replica's.
func (r *replica) closePeer() {
	r.srv.Close()
	<-r.served
}

type harness struct {
	reg      *upstreamtest.Registry
	up       *upstreamtest.Faulty // counts what the registry is asked
	replicas []*replica
}

// newHarness starts n replicas in front of one registry. order, when
// not nil, gives each replica a fixed ranking (its addresses by index)
// instead of a real cluster.
func newHarness(t testing.TB, n int, ttl time.Duration, order func(i int) []int) *harness {
	t.Helper()
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	h.start(t, n, order, func(r *replica, o cache.Origin, _ *Client) cache.Options {
		return cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{o}, TagTTL: ttl, Metrics: r.metrics}
	}, nil)
	return h
}

// start starts n replicas in front of h's registry, ranked by order as
// newHarness says. opts is replica r's cache.Options, given its origin
// (the registry behind a peer.Origin) and its peer client; wrap, when
// not nil, wraps its peer listener's handler.
func (h *harness) start(t testing.TB, n int, order func(i int) []int, opts func(r *replica, o cache.Origin, pc *Client) cache.Options, wrap func(i int, next http.Handler) http.Handler) {
	t.Helper()
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	for i := range n {
		reg := prometheus.NewRegistry()
		r := &replica{addr: addrs[i], reg: reg, metrics: metrics.New(reg), served: make(chan struct{})}
		r.spy = &spy{self: addrs[i]}
		if order == nil {
			cl, err := cluster.New(cluster.Options{Self: addrs[i], Peers: addrs, Secret: testSecret, CheckEvery: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cl.Close() })
			r.spy.real = cl
		} else {
			for _, j := range order(i) {
				r.spy.order = append(r.spy.order, addrs[j])
			}
		}
		up, err := upstream.New(upstream.Options{Name: "registry.test", URL: h.up.URL, MaxRetries: -1, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { up.Close() })
		pc, err := NewClient(Options{Cluster: r.spy, Secret: testSecret, HeaderTimeout: 5 * time.Second, Metrics: r.metrics})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pc.Close)
		r.origin = pc.NewOrigin(up)
		c, err := cache.Open(opts(r, r.origin, pc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r.cache = c
		s, err := NewServer(ServerOptions{Store: c, Secret: testSecret, Metrics: r.metrics})
		if err != nil {
			t.Fatal(err)
		}
		var handler http.Handler = s
		if wrap != nil {
			handler = wrap(i, s)
		}
		r.srv = &http.Server{Handler: handler}
		go func(ln net.Listener) {
			defer close(r.served)
			_ = r.srv.Serve(ln)
		}(lns[i])
		t.Cleanup(r.closePeerOnce())
		h.replicas = append(h.replicas, r)
	}
}

// closePeerOnce is closePeer for t.Cleanup, after a test may have
// closed the listener already.
func (r *replica) closePeerOnce() func() {
	return func() {
		select {
		case <-r.served:
		default:
			r.closePeer()
		}
	}
}

// owner is the replica ranked first for key by replica 0's cluster.
func (h *harness) owner(key string) int {
	first := h.replicas[0].spy.Rank(key)[0].Addr
	for i, r := range h.replicas {
		if r.addr == first {
			return i
		}
	}
	panic("no owner")
}

var repo = cache.Repo{Upstream: "registry.test", Path: "team/app"}

// pull reads d through replica r and returns the digest of what it read.
func pull(ctx context.Context, r *replica, d digest.Digest) (digest.Digest, error) {
	b, err := r.cache.Blob(ctx, repo, d)
	if err != nil {
		return "", err
	}
	defer b.Close()
	var src io.Reader = b.File
	if b.Fill != nil {
		src = b.Fill.Reader(ctx, 0)
	}
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), src); err != nil {
		return "", err
	}
	if got := dg.Digest(); got != d {
		return got, errors.New("wrong bytes")
	}
	return d, nil
}
