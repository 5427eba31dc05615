package upload

import (
	"context"
	"errors"
	"time"

	"github.com/wharf-mirror/wharf/cache/records"
)

// sweepShared ends the shared sessions idle for longer than the expiry,
// removes the chunks of sessions that no longer exist, and gives back
// this replica's slots of sessions that ended elsewhere. Every replica
// sweeps; what makes that safe:
//
//   - An idle session is ended by replacing its state, on the version
//     found idle, with a tombstone, and only then deleting it and its
//     chunks. A PATCH acknowledged after the sweep read the state changed
//     the version, so the tombstone is refused and the session lives; a
//     PATCH racing the tombstone loses its own conditional write, so it is
//     not acknowledged. Either way no acknowledged chunk of a live session
//     is removed.
//   - A chunk whose session has no state is a leftover: a session's state
//     is written before any of its chunks, and deleted before them.
func (s *Sessions) sweepShared() int {
	ctx := s.life
	cutoff := s.opts.Now().Add(-s.opts.Expiry)
	var ids []string
	err := s.opts.Shared.Records.List(ctx, "uploads/", func(key string) error {
		if id := sessionOf(key); id != "" {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.WithError(err).Warn("list upload sessions to sweep")
	}
	n := 0
	for _, id := range ids {
		if s.expire(ctx, id, cutoff) {
			n++
		}
	}
	s.sweepChunks(ctx)
	s.releaseEnded(ctx)
	if n > 0 {
		s.log.WithField("sessions", n).Info("expired abandoned uploads")
	}
	return n
}

// expire ends id if its state is idle since before cutoff, or a tombstone
// an earlier sweep left. A session with a request in progress on this
// replica is not idle, and the sweep does not wait for it.
func (s *Sessions) expire(ctx context.Context, id string, cutoff time.Time) bool {
	unlock, ok := s.tryLock(id)
	if !ok {
		return false
	}
	defer unlock()
	st, ver, err := s.readState(ctx, id)
	if err != nil || (!st.Ended && !st.active().Before(cutoff)) {
		return false
	}
	return s.endIdle(ctx, id, st, ver)
}

// endIdle ends id, found idle as st at version ver: unless a chunk came
// since, which the conditional tombstone finds out.
func (s *Sessions) endIdle(ctx context.Context, id string, st sharedState, ver string) bool {
	if !st.Ended {
		st.Ended = true
		if _, err := s.putState(ctx, id, st, records.IfMatch(ver)); err != nil {
			return false // a chunk came, or another replica swept it first
		}
	}
	if err := s.endShared(ctx, id); err != nil {
		s.log.WithError(err).WithField("upload", id).Warn("end expired upload; the next sweep retries")
		return false
	}
	return true
}

// sweepChunks removes the chunks of sessions that have no state.
func (s *Sessions) sweepChunks(ctx context.Context) {
	var gone []string
	err := s.opts.Shared.Chunks.Sessions(ctx, func(id string) error {
		if _, err := s.opts.Shared.Records.Get(ctx, stateKey(id)); errors.Is(err, records.ErrNotFound) {
			gone = append(gone, id)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.WithError(err).Warn("list upload chunks to sweep")
	}
	for _, id := range gone {
		if err := s.opts.Shared.Chunks.DeleteSession(ctx, id); err != nil && ctx.Err() == nil {
			s.log.WithError(err).WithField("upload", id).Warn("remove leftover upload chunks")
		}
	}
}

// releaseEnded gives back the slots and local copies of this replica's
// sessions that ended on another replica (finished or cancelled there),
// and returns how many. A session with a request in progress here is left
// to that request.
func (s *Sessions) releaseEnded(ctx context.Context) int {
	s.mu.Lock()
	ids := make([]string, 0, len(s.mine))
	for id := range s.mine {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		unlock, ok := s.tryLock(id)
		if !ok {
			continue
		}
		st, _, err := s.readState(ctx, id)
		if errors.Is(err, records.ErrNotFound) || (err == nil && st.Ended) {
			s.release(id)
			n++
		}
		unlock()
	}
	return n
}
