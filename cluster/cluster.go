package cluster

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one replica of the cluster.
type Member struct {
	// Addr is the replica's address, host:port, which is also its name in
	// the ranking: every replica must spell a member the same way.
	Addr string
	Self bool // this replica
	// Up is false while the member is marked down: by DownAfter failed
	// health checks or by MarkFailed, until a check succeeds. Self is
	// always up.
	Up bool
}

// Cluster knows the replicas, which of them are up, and which owns a key.
// One goroutine, started by New and stopped by Close, resolves DNS and
// checks the peers' health; every method may be called from any
// goroutine.
type Cluster struct {
	opts   Options
	client *http.Client
	owned  *http.Transport // the default transport, when it is ours to close

	mu      sync.Mutex
	dns     []string              // the members DNS last gave (canonical, self excluded)
	peers   map[string]*peerState // every member but self
	members []Member              // every member, self included, by address
	changed chan struct{}         // closed at the next change, then replaced

	// live is the members that are up, sorted by address: replaced whole
	// on every change, so Rank and Owner read it without the lock.
	live atomic.Pointer[[]Member]

	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

// New starts a Cluster with Self and Peers, every peer up until its checks
// say otherwise, so that a starting replica ranks keys as the running ones
// do instead of owning everything until its first checks. The first DNS
// resolution and the first round of checks start at once, in the
// background: New does no I/O, and a DNS name that does not resolve yet
// (a Service whose pods are not ready) is not an error.
func New(opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, peers: map[string]*peerState{}, changed: make(chan struct{}), done: make(chan struct{})}
	rt := opts.Transport
	if rt == nil {
		c.owned = http.DefaultTransport.(*http.Transport).Clone()
		// Peers are reached directly: an HTTP_PROXY meant for the
		// upstream must not carry the cluster secret or see pod addresses.
		c.owned.Proxy = nil
		rt = c.owned
	}
	c.client = &http.Client{
		Transport: rt,
		// A health answer is the peer's own: a redirect is a failure,
		// and the secret is never sent on to another address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.mu.Lock()
	c.setPeersLocked(nil)
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c, nil
}

// Close stops the loop and waits for it, in-flight checks included. It
// may be called more than once.
func (c *Cluster) Close() error {
	c.close.Do(func() {
		c.cancel()
		<-c.done
		if c.owned != nil {
			c.owned.CloseIdleConnections()
		}
	})
	return nil
}

// Self is this replica's address, in canonical form.
func (c *Cluster) Self() string { return c.opts.Self }

// Members returns every member, self included, up or down, sorted by
// address.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// Changed returns a channel closed at the next change of the members or
// of any member's state: wait on it, then call Members again.
func (c *Cluster) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Rank returns the members that are up, ordered by their rendezvous
// weight for key: the owner first, then whom to ask when it fails. It
// always holds self. See rank.go for why rendezvous hashing.
func (c *Cluster) Rank(key string) []Member { return rank(*c.live.Load(), key) }

// Owner returns Rank(key)[0] without ranking the rest.
func (c *Cluster) Owner(key string) Member { return owner(*c.live.Load(), key) }

// MarkFailed marks peer down at once, for a caller whose request to it
// failed, so that Rank skips it without waiting for DownAfter checks; the
// next successful check marks it up again. Report what says the peer is
// unwell (no connection, a 5xx, a timeout), not an answer such as 404 or
// a request the caller itself cancelled. Self and unknown addresses are
// ignored.
func (c *Cluster) MarkFailed(peer string) {
	addr, err := canonicalAddr(peer)
	if err != nil {
		return
	}
	c.mu.Lock()
	s, ok := c.peers[addr]
	if !ok || s.down {
		c.mu.Unlock()
		return
	}
	s.down, s.failures = true, c.opts.DownAfter
	c.publishLocked()
	c.mu.Unlock()
	c.opts.Logger.WithField("peer", addr).Warn("cluster: peer marked down by a failed request")
}

// run is the loop: it resolves DNS every ResolveEvery and checks every
// peer every CheckEvery, the first time of each at once. A round of
// checks holds the loop for at most CheckTimeout (the checks run at once,
// each bounded), so a hung peer delays a resolution by a second at most
// and never piles up checks of its own.
func (c *Cluster) run(ctx context.Context) {
	defer close(c.done)
	var resolveC <-chan time.Time
	if c.opts.DNS != "" {
		c.resolve(ctx)
		t := time.NewTicker(c.opts.ResolveEvery)
		defer t.Stop()
		resolveC = t.C
	}
	c.checkAll(ctx)
	checks := time.NewTicker(c.opts.CheckEvery)
	defer checks.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resolveC:
			c.resolve(ctx)
		case <-checks.C:
			c.checkAll(ctx)
		}
	}
}

// setPeersLocked makes the peers the static ones and dns: a new peer
// starts up, a peer no longer listed is forgotten.
func (c *Cluster) setPeersLocked(dns []string) {
	c.dns = dns
	want := map[string]bool{}
	for _, a := range slices.Concat(c.opts.Peers, dns) {
		if a != c.opts.Self {
			want[a] = true
		}
	}
	for a := range c.peers {
		if !want[a] {
			delete(c.peers, a)
		}
	}
	for a := range want {
		if c.peers[a] == nil {
			c.peers[a] = &peerState{}
		}
	}
	c.publishLocked()
}

// publishLocked rebuilds members and live from peers and wakes whoever
// waits on Changed.
func (c *Cluster) publishLocked() {
	members := []Member{{Addr: c.opts.Self, Self: true, Up: true}}
	for a, s := range c.peers {
		members = append(members, Member{Addr: a, Up: !s.down})
	}
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.Addr, b.Addr) })
	live := slices.DeleteFunc(slices.Clone(members), func(m Member) bool { return !m.Up })
	c.members = members
	c.live.Store(&live)
	close(c.changed)
	c.changed = make(chan struct{})
}

// checkAll checks every peer at once, each within CheckTimeout, and
// returns when every check has: a round never overlaps the next, and
// Close waits for it.
func (c *Cluster) checkAll(ctx context.Context) {
	c.mu.Lock()
	peers := make([]string, 0, len(c.peers))
	for a := range c.peers {
		peers = append(peers, a)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.opts.CheckTimeout)
			defer cancel()
			err := check(cctx, c.client, p, SendSecret(c.opts.Secret))
			if ctx.Err() != nil {
				return // closing: the failure is ours, not the peer's
			}
			c.observe(p, err)
		})
	}
	wg.Wait()
}

// observe records a check's outcome for peer and logs a change of state.
func (c *Cluster) observe(peer string, err error) {
	c.mu.Lock()
	s, ok := c.peers[peer]
	changed := ok && s.observe(err, c.opts.DownAfter)
	var down bool
	if changed {
		down = s.down
		c.publishLocked()
	}
	c.mu.Unlock()
	switch {
	case !changed:
	case down:
		c.opts.Logger.WithField("peer", peer).WithError(err).Warn("cluster: peer down")
	default:
		c.opts.Logger.WithField("peer", peer).Info("cluster: peer up")
	}
}
