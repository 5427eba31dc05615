package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/lease"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/peer"
	"github.com/wharf-mirror/wharf/writethrough"
)

// replica is this wharf's part in a cluster (config's cluster section):
// the membership, the client that asks the owning peers, and the peer
// listener. Start it before the cache (whose origins it wraps), serve its
// listener once the cache is open, and stop in reverse order: the
// listener before the cache, the membership and the client after it
// (the cache's fills use them until it is closed).
type replica struct {
	cfg     config.Cluster
	cl      *cluster.Cluster
	client  *peer.Client
	m       *metrics.Metrics
	log     logrus.FieldLogger
	srv     *http.Server
	served  chan error
	cancel  context.CancelFunc
	watched sync.WaitGroup
}

// startReplica joins the cluster: nil, nil when the section is off.
// headerTimeout bounds the wait for an owner's answer: the owner answers
// once the registry has, so it is the upstream's own bound and more.
func startReplica(cfg config.Cluster, headerTimeout time.Duration, m *metrics.Metrics, log logrus.FieldLogger) (*replica, error) {
	if !cfg.On() {
		return nil, nil
	}
	self, err := cfg.SelfAddr()
	if err != nil {
		return nil, err
	}
	log = log.WithField("component", "cluster")
	cl, err := cluster.New(cluster.Options{Self: self, Peers: cfg.Peers, DNS: cfg.DNS, Secret: cfg.Secret.Value(), Logger: log})
	if err != nil {
		return nil, err
	}
	client, err := peer.NewClient(peer.Options{Cluster: cl, Secret: cfg.Secret.Value(), HeaderTimeout: headerTimeout, Metrics: m, Logger: log})
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &replica{cfg: cfg, cl: cl, client: client, m: m, log: log}, nil
}

// self is this replica's name among the others ("" outside a cluster):
// what its shared records about itself are keyed by.
func (r *replica) self() string {
	if r == nil {
		return ""
	}
	return r.cl.Self()
}

// origins wraps each upstream in a peer.Origin for the cache. The
// write-through worker keeps the upstreams themselves: it pushes to the
// registry, and a peer's HeadBlob answers for the cluster's cache.
func (r *replica) origins(ups []cache.Origin) []cache.Origin {
	if r == nil {
		return ups
	}
	out := make([]cache.Origin, len(ups))
	for i, o := range ups {
		out[i] = r.client.NewOrigin(o)
	}
	return out
}

// announcer tells the other replicas of a first push into a repository
// (cache.Options.Announcer); nil outside a cluster.
func (r *replica) announcer() cache.Announcer {
	if r == nil {
		return nil
	}
	return r.client
}

// serve starts the peer listener over store's read path. It is plain
// HTTP: the secret authenticates, nothing encrypts; run it on a network
// only the replicas reach.
func (r *replica) serve(store peer.Store) error {
	if r == nil {
		return nil
	}
	h, err := peer.NewServer(peer.ServerOptions{Store: store, Secret: r.cfg.Secret.Value(), Metrics: r.m, Logger: r.log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cluster.listen %s: %w", r.cfg.Listen, err)
	}
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	r.served = make(chan error, 1)
	go func() { r.served <- r.srv.Serve(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.watched.Go(func() { peer.Watch(ctx, r.cl, r.m) })
	r.log.WithFields(logrus.Fields{"listen": ln.Addr().String(), "self": r.cl.Self()}).Info("peer listener serving")
	return nil
}

// stopServing closes the peer listener, letting requests in flight
// finish for a while, and stops the metrics watch.
func (r *replica) stopServing() {
	if r == nil || r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.srv.Close()
	}
	if err := <-r.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.log.WithError(err).Warn("peer listener")
	}
	r.cancel()
	r.watched.Wait()
}

// Close leaves the cluster: the membership's loop and the client's
// connections. After the cache is closed.
func (r *replica) Close() {
	if r == nil {
		return
	}
	r.cl.Close()
	r.client.Close()
}

// writeThrough is the write-through queue and options for this wharf: the
// data directory's queue alone, or in a cluster the queue every replica
// shares in the bucket, which one replica at a time runs (lead).
func (r *replica) writeThrough(store *dataStore, opts writethrough.Options) (writethrough.Queue, writethrough.Options) {
	if r == nil {
		return store.Queue(), opts
	}
	opts.Shared = true
	return writethrough.SharedQueue{Records: store.shared.Records()}, opts
}

// lead runs job while this replica holds the cluster's lease name; nil
// (nothing to close) outside a cluster.
func (r *replica) lead(store *dataStore, name string, job func(context.Context)) (*lease.Lease, error) {
	if r == nil {
		return nil, nil
	}
	l, err := lease.Run(lease.Options{Records: store.shared.Records(), Name: name, Holder: r.cl.Self(), Logger: r.log}, job)
	if err != nil {
		return nil, fmt.Errorf("cluster lease %s: %w", name, err)
	}
	return l, nil
}
