package upload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wharf-mirror/wharf/cache/records"
)

// A request that streams into a shared session for longer than the
// expiry must not look idle to another replica's sweep, which knows of
// the session only its state in the bucket. So while a body streams, the
// replica taking it re-writes the state every keepEvery, changing only
// its Touched stamp, each time on the condition that it is still the
// version this replica holds (records.IfMatch), and carries the new
// version to the request's own conditional write at the end.
//
// The sweep's tombstone rule still decides every race (sharedsweep.go):
// a keep-alive written before the tombstone changes the version, so the
// tombstone is refused and the session lives; a tombstone written first
// makes the keep-alive's write fail, the keep-alive stops, and the
// request's final write fails as well, so its chunk is never
// acknowledged. A chunk another replica appended meanwhile stops the
// keep-alive the same way, and the request answers 416 as before.

// keepEvery is how often a streaming request re-writes its session's
// state: four times per expiry, so a sweep never finds it idle even when
// a write or two fail, and at least minKeep apart.
func keepEvery(expiry time.Duration) time.Duration {
	return max(expiry/4, minKeep)
}

const minKeep = 100 * time.Millisecond

// ticker is a clock's tick channel and its stop; Sessions.tick makes one
// (a real time.Ticker, or the tests' own).
type ticker func(every time.Duration) (<-chan time.Time, func())

func realTicker(every time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(every)
	return t.C, t.Stop
}

// keeper is the goroutine that keeps one request's session alive. The
// request owns it: keepAlive starts it, done stops it and waits.
type keeper struct {
	s    *Sessions
	id   string
	st   sharedState // the state as the request read it
	ver  string      // the version this replica holds; the goroutine's until done
	stop chan struct{}
	gone chan struct{}
}

// keepAlive starts keeping id alive from its state st at version ver.
// The caller holds id's lock, and calls done before writing the state.
// A session last vouched for more than keepEvery ago is touched at once,
// before the request reads its body: one starting late in the expiry
// would otherwise be swept before the first tick. If that touch finds
// the session replaced or gone, keepAlive returns why, and the request
// fails without reading its body.
func (s *Sessions) keepAlive(ctx context.Context, id string, st sharedState, ver string) (*keeper, error) {
	k := &keeper{s: s, id: id, st: st, ver: ver, stop: make(chan struct{}), gone: make(chan struct{})}
	every := keepEvery(s.opts.Expiry)
	if s.opts.Now().Sub(st.active()) > every && !k.touch(ctx) {
		if err := ctx.Err(); err != nil { // the client left: no store failure
			return nil, fmt.Errorf("upload %s: %w", id, err)
		}
		cur, _, err := s.load(ctx, st.Repo, id)
		if err != nil {
			return nil, err
		}
		return nil, &RangeError{Size: cur.Size} // another replica wrote it
	}
	tick, stopTick := s.tick(every)
	go func() {
		defer close(k.gone)
		defer stopTick()
		for {
			select {
			case <-k.stop:
				return
			case <-ctx.Done():
				return
			case <-tick:
			}
			ok := k.touch(ctx)
			if k.s.touched != nil {
				k.s.touched(ok)
			}
			if !ok {
				return
			}
		}
	}()
	return k, nil
}

// done stops the keep-alive and returns the version the request's own
// conditional write must match.
func (k *keeper) done() string {
	close(k.stop)
	<-k.gone
	return k.ver
}

// touch re-writes the state with a fresh Touched stamp. It reports
// whether to go on: not once another writer replaced the state (a chunk
// through another replica, or a sweep's tombstone).
func (k *keeper) touch(ctx context.Context) bool {
	st := k.st
	st.Touched = k.s.opts.Now()
	ver, err := k.s.putState(ctx, k.id, st, records.IfMatch(k.ver))
	switch {
	case err == nil:
		k.ver = ver
		return true
	case errors.Is(err, records.ErrNotFound), ctx.Err() != nil:
		return false // gone, or the request is over: no store failure
	}
	// The store may have taken the write without saying so, and a retry
	// of it then conflicts with the write itself: if the state is exactly
	// the one written, its version is this replica's to carry.
	conflict := errors.Is(err, records.ErrConflict)
	if !conflict {
		k.s.opts.Metrics.StoreError("write")
	}
	if cur, ver, err := k.s.readState(ctx, k.id); err == nil && cur.sameAs(st) {
		k.ver = ver
		return true
	}
	return !conflict
}
