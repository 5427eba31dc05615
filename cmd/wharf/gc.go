package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/lease"
)

// gcLease is the lease wharf gc holds on a shared store: the one the
// replica evicting from the bucket holds (serve's lead), so that gc and
// that eviction never delete at once.
const gcLease = "evict"

// gc removes content no tag reaches. With storage.s3 it asks the
// cluster's records what any replica's tags reach (cache.GC), and
// removes only while holding the cluster's eviction lease, waiting up to
// --wait for it; a dry run removes nothing and takes no lease, but, as
// every run with storage.s3, indexes in --data what it learns of the
// bucket (its content by size, the references of manifests it reads).
func gc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var dry bool
	var wait time.Duration
	flags := func(fs *flag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "only report what would be removed (with storage.s3 it still indexes the bucket's content in --data)")
		fs.DurationVar(&wait, "wait", time.Minute, "with storage.s3, how long to wait for the cluster's eviction lease (held by the replica evicting from the bucket)")
	}
	cfg, err := adminFlags("gc", args, stderr, flags)
	if err != nil {
		return err
	}
	log := quietLogger(stderr)
	s, err := openStore(ctx, cfg, cache.Options{Logger: log}, readThrough)
	if err != nil {
		return err
	}
	defer s.Close()
	var rep cache.GCReport
	if s.shared == nil || dry {
		rep, err = s.GC(ctx, dry)
	} else {
		rep, err = gcLeading(ctx, s, wait, log)
	}
	if err != nil {
		return err
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	fmt.Fprintf(stdout, "%s %d unreferenced items, %s\n", verb, rep.Items, human(rep.Bytes))
	return nil
}

// gcLeading runs c.GC while holding the cluster's eviction lease, taken
// within wait; otherwise it refuses, naming the holder. Losing the lease
// midway stops the collection (what it removed stays removed).
func gcLeading(ctx context.Context, s *dataStore, wait time.Duration, log logrus.FieldLogger) (cache.GCReport, error) {
	recs := s.shared.Records()
	host, _ := os.Hostname()
	var (
		mu              sync.Mutex
		running, gaveUp bool
		rep             cache.GCReport
		gcErr           error
		done            = make(chan struct{})
	)
	l, err := lease.Run(lease.Options{Records: recs, Name: gcLease, Holder: "wharf gc on " + host, Logger: log}, func(lctx context.Context) {
		mu.Lock()
		// Once: a lease lost midway and taken again runs the job again,
		// and the collection it ended is not started over.
		if gaveUp || running {
			mu.Unlock()
			return
		}
		running = true
		mu.Unlock()
		defer close(done)
		rep, gcErr = s.GC(lctx, false)
	})
	if err != nil {
		return rep, err
	}
	defer l.Close() // gives the lease up at once: the leader takes it back at its next look
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
	}
	mu.Lock()
	started := running
	gaveUp = !running
	mu.Unlock()
	if started {
		select {
		case <-done:
		case <-ctx.Done():
			l.Close() // ends the job's context
			<-done
		}
		return rep, gcErr
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	holder, renewed, err := lease.Holder(ctx, recs, gcLease)
	if err != nil {
		return rep, fmt.Errorf("the cluster's eviction lease is held, and reading it failed: %w", err)
	}
	if holder == "" { // given up since: another replica is about to take it
		holder, renewed = "another replica", "just now"
	}
	return rep, fmt.Errorf("the cluster's eviction lease is held by %s (renewed %s by its clock) and was not free within --wait %s: "+
		"gc removes from the bucket only while no replica evicts from it, and every serving replica of the cluster takes that lease in turn. "+
		"Stop the replicas (each gives the lease up as it stops; a killed one's expires after 30s) and run gc again, or raise --wait; "+
		"--dry-run takes no lease", holder, renewed, wait)
}
