package main

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/prefetch"
	"github.com/wharf-mirror/wharf/proxy"
)

// prefetcher starts prefetch over every upstream (a lane each, told apart
// by the name the cache files their repositories under), or returns nil,
// which is off: switched off, or offline (no upstream to ask). Its workers
// run until Close, which serve defers before the store's.
func (u *upstreams) prefetcher(ctx context.Context, cfg config.Config, store prefetch.Store, m *metrics.Metrics, log logrus.FieldLogger) (*prefetch.Prefetcher, error) {
	if !cfg.Upstream.PrefetchOn() || cfg.OfflineOn() {
		return nil, nil
	}
	lanes := make([]prefetch.Upstream, len(u.clients))
	for i, c := range u.clients {
		lanes[i] = c
	}
	return prefetch.New(ctx, prefetch.Options{
		Store:       store,
		Upstreams:   lanes,
		Concurrency: cfg.Upstream.PrefetchConcurrency,
		Metrics:     m,
		Logger:      log,
	})
}

// prefetchOption is pf as proxy.Options.Prefetch: nil when off, for a nil
// *Prefetcher in the interface would be a non-nil one.
func prefetchOption(pf *prefetch.Prefetcher) proxy.Prefetcher {
	if pf == nil {
		return nil
	}
	return pf
}
