// Package lease lets one replica of a cluster at a time do a job that
// must not run twice at once (the shared tier's eviction, the
// write-through queue), with no consensus of its own: the lease is a
// record in the shared store, taken and kept by its conditional writes.
//
//	take:   Put(key, me, IfAbsent())          nobody holds it
//	        Put(key, me, IfMatch(v))          v, another's, unchanged for a whole TTL
//	renew:  Put(key, me, IfMatch(mine))       every TTL/3
//	give:   Delete(key) after a last check    on Close
//
// No replica compares its clock with another's. A holder renews every
// TTL/3; a waiter takes over only after it has seen the same version for a
// whole TTL by its own clock, so a holder that stops renewing (dead, cut
// off, frozen) is replaced one TTL after its last renewal was seen. The
// holder, for its part, stops its job (cancels the job's context) when
// TTL/2 has passed since its last successful renewal: well before any
// waiter can take over, as long as clocks run at about the same rate.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache/records"
)

// Options configure a Lease.
type Options struct {
	Records records.Store
	Name    string // the job's name; the record is leases/<Name>
	Holder  string // this replica's name, written in the record for people reading it
	// TTL is how long a lease outlives its holder's last renewal. Default 30s.
	TTL    time.Duration
	Logger logrus.FieldLogger
}

// Lease runs a job while this replica holds the lease.
type Lease struct {
	opts Options
	key  string
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	held bool
}

// holding is what the record says, for people reading the bucket: the
// version, not the content, is what the replicas compare.
type holding struct {
	Holder  string    `json:"holder"`
	Renewed time.Time `json:"renewed"` // by the holder's clock
}

// Run starts taking and renewing the lease in a goroutine the Lease owns
// until Close; each time the lease is held, job runs with a context that
// ends when the lease is lost or the Lease closed. job should return when
// its context ends; it is not started again while a previous run is on.
func Run(opts Options, job func(ctx context.Context)) (*Lease, error) {
	if opts.Records == nil || opts.Name == "" || opts.Holder == "" {
		return nil, errors.New("lease: Records, Name and Holder are required")
	}
	if err := records.CheckKey("leases/" + opts.Name); err != nil {
		return nil, fmt.Errorf("lease %q: %w", opts.Name, err)
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = logrus.StandardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lease{opts: opts, key: "leases/" + opts.Name, stop: cancel, done: make(chan struct{})}
	go l.loop(ctx, job)
	return l, nil
}

// Held says whether this replica holds the lease now.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Close stops the job, gives the lease up if held (so another replica
// takes it at once rather than after a TTL) and waits for the goroutine.
func (l *Lease) Close() error {
	l.stop()
	<-l.done
	return nil
}

func (l *Lease) setHeld(h bool) {
	l.mu.Lock()
	l.held = h
	l.mu.Unlock()
}

// loop alternates between waiting for the lease and holding it.
func (l *Lease) loop(ctx context.Context, job func(context.Context)) {
	defer close(l.done)
	log := l.opts.Logger.WithField("lease", l.opts.Name)
	for ctx.Err() == nil {
		version, taken, err := l.take(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.WithError(err).Warn("lease: cannot read or take")
				l.wait(ctx, l.opts.TTL/3)
			}
			continue
		}
		log.Info("lease taken")
		l.hold(ctx, version, taken, job)
		log.Info("lease given up")
	}
}

// take returns once this replica holds the lease, with its version and
// when the write that took it began (the holder's safety margin runs
// from there), or when ctx ends.
func (l *Lease) take(ctx context.Context) (string, time.Time, error) {
	var seen string      // the other holder's version last read
	var seenAt time.Time // when seen was first read, by this clock
	for {
		rec, err := l.opts.Records.Get(ctx, l.key)
		switch {
		case errors.Is(err, records.ErrNotFound):
			start := time.Now()
			if v, err := l.putWithin(ctx, records.IfAbsent()); err == nil {
				return v, start, nil
			} else if !errors.Is(err, records.ErrConflict) {
				return "", time.Time{}, err
			}
		case err != nil:
			return "", time.Time{}, err
		case rec.Version != seen:
			seen, seenAt = rec.Version, time.Now()
		case time.Since(seenAt) >= l.opts.TTL:
			// Unchanged for a whole TTL: its holder stopped renewing.
			start := time.Now()
			if v, err := l.putWithin(ctx, records.IfMatch(seen)); err == nil {
				return v, start, nil
			} else if !errors.Is(err, records.ErrConflict) {
				return "", time.Time{}, err
			}
		}
		if err := l.wait(ctx, l.opts.TTL/3); err != nil {
			return "", time.Time{}, err
		}
	}
}

// putWithin is put bounded by TTL/2: a take that the store answers later
// than that would leave its holder no margin.
func (l *Lease) putWithin(ctx context.Context, cond records.Cond) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.TTL/2)
	defer cancel()
	return l.put(ctx, cond)
}

// hold runs job and renews the lease every TTL/3 until ctx ends or a
// renewal has not succeeded for TTL/2; then stops job and waits for it.
func (l *Lease) hold(ctx context.Context, version string, taken time.Time, job func(context.Context)) {
	jobCtx, stopJob := context.WithCancel(ctx)
	jobDone := make(chan struct{})
	l.setHeld(true)
	go func() {
		defer close(jobDone)
		job(jobCtx)
	}()
	stop := func() {
		l.setHeld(false)
		stopJob()
		<-jobDone
	}
	// The job must stop by TTL/2 after the last renewal whatever the store
	// does, a renewal that hangs included: each renewal is bounded by
	// that deadline.
	deadline := taken.Add(l.opts.TTL / 2)
	for {
		if err := l.wait(ctx, l.opts.TTL/3); err != nil {
			stop() // the job ends before another replica may start it
			l.give(version)
			return
		}
		start := time.Now()
		rctx, cancel := context.WithDeadline(ctx, deadline)
		v, err := l.put(rctx, records.IfMatch(version))
		cancel()
		switch {
		case err == nil:
			version, deadline = v, start.Add(l.opts.TTL/2)
		case errors.Is(err, records.ErrConflict):
			stop() // taken over: another replica holds it now
			return
		case !time.Now().Before(deadline):
			l.opts.Logger.WithField("lease", l.opts.Name).WithError(err).Warn("lease: not renewed for half its TTL; stopping the job")
			stop()
			return
		}
	}
}

// give deletes the lease if it is still this replica's version, so that
// another replica need not wait a TTL. Under a context of its own: the
// Lease's has ended.
func (l *Lease) give(version string) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.TTL/3)
	defer cancel()
	rec, err := l.opts.Records.Get(ctx, l.key)
	if err != nil || rec.Version != version {
		return
	}
	// Between the check and the delete another replica could only take
	// the lease by waiting a TTL on this version: not in this instant.
	if err := l.opts.Records.Delete(ctx, l.key); err != nil {
		l.opts.Logger.WithField("lease", l.opts.Name).WithError(err).Warn("lease: cannot give up; it expires after its TTL")
	}
}

func (l *Lease) put(ctx context.Context, cond records.Cond) (string, error) {
	data, err := json.Marshal(holding{Holder: l.opts.Holder, Renewed: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	return l.opts.Records.Put(ctx, l.key, data, cond)
}

func (l *Lease) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
