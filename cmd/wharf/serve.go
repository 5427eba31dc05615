package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/statuspage"
	"github.com/wharf-mirror/wharf/writethrough"
)

// serve loads the configuration, wires the layers together and serves until
// ctx ends, then shuts down in reverse order: HTTP first (finishing
// in-flight requests), then the cache (stopping fills, closing the index).
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := config.LoadWith(config.LoadOptions{Args: args, LookupEnv: os.LookupEnv, Output: stderr})
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	log.AddHook(requestIDHook{})
	recent := proxy.NewRecentErrors(50) // the status page's grouped errors (50 groups), fed by every component
	log.AddHook(recent)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	ups, err := newUpstreams(cfg, m, log)
	if err != nil {
		return err
	}
	defer ups.Close()
	up := ups.Default()
	pinned, err := pins(cfg.Storage.Pins(), ups.set)
	if err != nil {
		return err
	}
	for _, w := range []string{s3Warning(cfg), s3RoleWarning(cfg, os.LookupEnv)} {
		if w != "" {
			log.Warn(w)
		}
	}
	// A replica of a cluster asks the owning peer before each upstream.
	// An owner answers once its registry has: up to the upstream's
	// timeout per try, every try, and a margin.
	peerWait := cfg.Upstream.Timeout.Std()*time.Duration(cfg.Upstream.Retries+1) + 5*time.Second
	node, err := startReplica(cfg.Cluster, peerWait, m, log)
	if err != nil {
		return err
	}
	defer node.Close() // after the store: its fills ask peers until it is closed
	store, err := openStore(ctx, cfg, cache.Options{
		Origins:       node.origins(ups.origins),
		Announcer:     node.announcer(),
		TagTTL:        cfg.Upstream.TagTTL.Std(),
		MaxSize:       contentCap(cfg), // the bucket's with storage.s3; openStore caps the local copies
		HighWatermark: float64(cfg.Storage.HighWatermark) / 100,
		LowWatermark:  float64(cfg.Storage.LowWatermark) / 100,
		Pins:          pinned,
		Offline:       cfg.OfflineOn(),
		Metrics:       m,
		Logger:        log.WithField("component", "cache"),
		// In a cluster one replica at a time evicts from the bucket (the
		// lease below).
		SharedEviction: node != nil,
		Replica:        node.self(),

		RevalidateTimeout: cfg.Upstream.RevalidateTimeout.Std(), // a pull of a cached tag waits this long for the upstream at most
		SegmentThreshold:  int64(cfg.Upstream.SegmentThreshold),
		Segments:          cfg.Upstream.Segments,
	}, copyOnRead)
	if err != nil {
		return err
	}
	defer store.Close() // the cache, then the content store (tier, bucket) under it
	evicting, err := node.lead(store, "evict", store.LeadEviction)
	if err != nil {
		return err
	}
	if evicting != nil {
		defer evicting.Close() // before the store
	}
	if err := node.serve(store.Cache); err != nil {
		return err
	}
	defer node.stopServing() // before the store: peers' requests read it
	wopts := writerOptions(cfg)
	wopts.Logger = log.WithField("component", "push")
	if cfg.AnyWriteThrough() { // per upstream: pull-only ones are not writethrough.Replicators
		q, wtopts := node.writeThrough(store, writethrough.Options{
			Sync:    cfg.Upstream.WriteThroughSyncOn(),
			Origins: ups.origins,
			Metrics: m,
			Logger:  log.WithField("component", "writethrough"),
		})
		wt, err := writethrough.New(store, q, wtopts)
		if err != nil {
			return fmt.Errorf("write-through: %w", err)
		}
		defer wt.Close() // after the writer, before the store: its queue is in the index (or the bucket)
		wopts.WriteThrough = wt
		// In a cluster one replica at a time runs every replica's jobs.
		l, err := node.lead(store, "writethrough", wt.Lead)
		if err != nil {
			return err
		}
		if l != nil {
			defer l.Close() // before the worker: the lead ends first
		}
	}
	writer, err := push.New(store.Cache, wopts)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer writer.Close() // before the store

	pf, err := ups.prefetcher(ctx, cfg, store.Cache, m, log.WithField("component", "prefetch"))
	if err != nil {
		return err
	}
	defer pf.Close() // before the store: its workers read through it (nil: off)

	auth, err := authOptions(cfg.Auth, log.WithField("component", "auth"))
	if err != nil {
		return err
	}
	page, err := ups.statusPage(statuspage.Options{Gatherer: reg, Store: holdings{store.Cache}, Errors: recent, Logger: log.WithField("component", "status")})
	if err != nil {
		return err
	}
	handler, err := proxy.New(proxy.Options{
		Store:          writer,
		Upstream:       up,
		Upstreams:      ups.set,
		Auth:           auth,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Metrics:        m,
		Logger:         log.WithField("component", "http"),
		StatusPage:     page,
		Prefetch:       prefetchOption(pf),

		BodyIdleTimeout: cfg.Push.BodyIdleTimeout.Std(),
	})
	if err != nil {
		return err
	}

	if cfg.Debug.Listen != "" {
		stopDebug, err := serveDebug(cfg.Debug.Listen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	var tlsConf *tls.Config
	if cfg.TLS.Enabled() {
		certs, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log.WithField("component", "tls"))
		if err != nil {
			return err
		}
		tlsConf = certs.tlsConfig()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	access := describeAccess(cfg)
	for _, w := range access.warnings {
		log.Warn(w)
	}
	if repos, err := store.Repositories(); err == nil {
		warnUnserved(repos, ups.set, cfg.OfflineOn(), log)
	}
	bytes, items := store.Usage()
	log.WithFields(logrus.Fields{
		"listen":   ln.Addr().String(),
		"upstream": up.Name(),
		"mirrors":  strings.Join(ups.Names(), ","),
		"tls":      tlsConf != nil,
		"pull":     access.pull,
		"push":     access.push,
		"offline":  cfg.OfflineOn(),
		"prefetch": pf != nil,
		"data":     cfg.Storage.Dir,
		"content":  contentLocation(cfg),
		"cached":   items,
		"bytes":    bytes,
		"version":  version,
	}).WithFields(capFields(cfg)).Info("wharf serving")
	if !cfg.OfflineOn() { // offline, wharf never asks an upstream, and one being down is the point
		stopProbes := ups.probe(ctx, log.WithField("component", "upstream"))
		defer stopProbes()
	}
	return serveHTTP(ctx, ln, handler, log, tlsConf)
}

// serveHTTP serves until ctx ends, then gives in-flight requests a grace
// period to finish. With tlsConf it serves HTTPS (HTTP/2 included).
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log logrus.FieldLogger, tlsConf *tls.Config) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	done := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			srv.TLSConfig = tlsConf
			done <- srv.ServeTLS(ln, "", "") // the certificate comes from GetCertificate
			return
		}
		done <- srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// serveDebug exposes pprof on its own listener, never on the registry port.
func serveDebug(addr string, log logrus.FieldLogger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.WithField("listen", ln.Addr().String()).Info("pprof serving")
	return func() { srv.Close() }, nil
}

func newLogger(c config.Log, out io.Writer) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(out)
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(level)
	if c.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	return log, nil
}

// retries converts the config's count (0 means none) to upstream.Options'
// (0 means its default, negative none).
func retries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// writerOptions turns the push settings into the write path's options,
// write-through aside (serve builds it).
func writerOptions(cfg config.Config) push.Options {
	o := push.Options{
		UploadExpiry:   cfg.Push.UploadExpiry.Std(),
		DisableDeletes: !cfg.Push.DeletesEnabled(),
		UploadLimits: push.UploadLimits{
			Max: cfg.Push.MaxUploads, PerClient: cfg.Push.MaxUploadsPerClient,
			ChunkBuffers: int64(cfg.Push.ChunkBuffers),
		},
	}
	return o
}

// requestIDHook adds the request id to log lines written below the proxy
// with the request's context (Entry.WithContext), so one id ties a
// client's request to what the cache and upstream logged for it.
type requestIDHook struct{}

func (requestIDHook) Levels() []logrus.Level { return logrus.AllLevels }

func (requestIDHook) Fire(e *logrus.Entry) error {
	if e.Context == nil {
		return nil
	}
	if _, set := e.Data["request_id"]; !set {
		if id := proxy.RequestID(e.Context); id != "" {
			e.Data["request_id"] = id
		}
	}
	return nil
}
