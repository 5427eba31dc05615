package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// errOverBudget: a tag's revalidation did not finish within
// RevalidateTimeout. The cached manifest is served (counted stale) and the
// revalidation goes on in the background.
var errOverBudget = errors.New("tag revalidation still running past its budget")

// flights tracks the detached upstream calls in progress: when each began
// (so a revalidation past its budget is served stale at once by everyone
// who asks after it, not after another wait) and a WaitGroup Close waits
// on.
type flights struct {
	mu      sync.Mutex
	running map[string]time.Time
	closed  bool // set by Close before it waits: no flight starts after
	wg      sync.WaitGroup
}

// errClosed: a detached call asked for after Close began.
var errClosed = errors.New("cache: closed")

// close stops new flights and waits for those running.
func (f *flights) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// startFlight runs fn once per key under a context that outlives the
// calling client: bounded by FetchTimeout, ended by Close (which waits for
// it). Every caller of the same key shares the one call.
func (c *Cache) startFlight(ctx context.Context, key string, fn func(context.Context) (any, error)) <-chan singleflight.Result {
	return c.flight.DoChan(key, func() (any, error) {
		c.flights.mu.Lock()
		if c.flights.closed { // Add after Close's Wait began would race it
			c.flights.mu.Unlock()
			return nil, errClosed
		}
		c.flights.wg.Add(1)
		c.flights.running[key] = time.Now()
		c.flights.mu.Unlock()
		defer c.flights.wg.Done()
		defer func() {
			c.flights.mu.Lock()
			delete(c.flights.running, key)
			c.flights.mu.Unlock()
		}()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
		defer cancel()
		defer context.AfterFunc(c.life, cancel)()
		return fn(fctx)
	})
}

// overdue reports whether the flight for key has been running for longer
// than RevalidateTimeout (real time: the budget is a client's wait).
func (c *Cache) overdue(key string) bool {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	start, ok := c.flights.running[key]
	return ok && time.Since(start) >= c.opts.RevalidateTimeout
}

// revalidate runs a cached tag's revalidation and waits for it at most
// RevalidateTimeout (stale-while-revalidate): a tag is metadata, and a
// client holding a cached copy should not wait on a slow or hung upstream
// for the blob-sized FetchTimeout. If a revalidation of the same tag is
// already past its budget it does not wait at all.
func (c *Cache) revalidate(ctx context.Context, key string, fn func(context.Context) (*Manifest, error)) (*Manifest, error) {
	if c.overdue(key) {
		return nil, errOverBudget
	}
	ch := c.startFlight(ctx, key, func(ctx context.Context) (any, error) { return fn(ctx) })
	t := time.NewTimer(c.opts.RevalidateTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Manifest), nil
	case <-t.C:
		return nil, errOverBudget
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
