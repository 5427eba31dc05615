package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/oci"
)

// Open returns the local copy of d when there is one: the disk store's
// *os.File, which http.ServeContent sends with sendfile. Otherwise it
// returns the shared tier's content and starts a promotion, a background
// copy of d into the local tier, so that later opens are local (unless d
// is larger than the local tier's cap).
//
// A local error other than a miss (a damaged disk) falls back to the
// shared tier too, but starts no promotion into that disk.
func (s *Store) Open(ctx context.Context, d digest.Digest) (Content, error) {
	c, err := s.local.Open(ctx, d)
	if err == nil {
		s.mu.Lock()
		s.used.touch(d)
		s.mu.Unlock()
		s.opts.Metrics.TierLocalHit()
		return c, nil
	}
	missing := errors.Is(err, fs.ErrNotExist)
	if missing {
		s.forget(d) // an eviction may have raced a rewrite (evict)
	}
	if gate := s.gate.Load(); gate != nil {
		if err := (*gate)(ctx, d); err != nil {
			return nil, err
		}
	}
	c, err = s.shared.Open(ctx, d)
	if err != nil {
		return nil, sharedErr("open", err)
	}
	s.opts.Metrics.TierSharedRead()
	if fi, err := c.Stat(); missing && err == nil && !s.tooBig(fi.Size()) {
		s.promote(d)
	}
	return c, nil
}

// GateShared sets gate, asked before d is read from the shared tier by
// Open (not by promotions, which read what Open let through): an error
// fails the Open. The cache sets it when it opens, before any read, to
// turn content the bucket's eviction is deleting into a miss.
func (s *Store) GateShared(gate func(ctx context.Context, d digest.Digest) error) {
	s.gate.Store(&gate)
}

// promote starts the promotion of d unless promotions are off
// (NoPromotions), one is running for d already, Options.Promotions are
// running, or the Store is closing. The caller's
// content is not shared with it: a client reads what it asked for (a
// Range, a HEAD), the promotion reads the whole object on its own, so a
// miss costs the shared tier one more read of the object.
func (s *Store) promote(d digest.Digest) {
	if s.opts.Promotions < 0 {
		return
	}
	s.mu.Lock()
	if s.ctx.Err() != nil || s.promoting[d] || len(s.promoting) >= s.opts.Promotions {
		s.mu.Unlock()
		return
	}
	s.promoting[d] = true
	s.wg.Add(1) // under the lock with the ctx check: never after Close's Wait began
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		n, err := s.copyIn(s.ctx, d)
		s.mu.Lock()
		delete(s.promoting, d)
		done := s.promoted
		s.mu.Unlock()
		s.report(d, n, err)
		if done != nil {
			done(d, err)
		}
	}()
}

// copyIn copies d from the shared tier into a staged local file, checks
// that the bytes hash to d and puts them in the local tier. The shared
// tier is trusted no more than an upstream: an object damaged there (or
// written under the wrong key by another tool) fails the check and never
// becomes a local copy, which would be served as verified.
func (s *Store) copyIn(ctx context.Context, d digest.Digest) (int64, error) {
	c, err := s.shared.Open(ctx, d)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	fi, err := c.Stat()
	if err != nil {
		return 0, fmt.Errorf("tier: promote %s: %w", d, err)
	}
	size := fi.Size()
	f, err := s.local.TempFile()
	if err != nil {
		return 0, fmt.Errorf("tier: promote %s: %w", d, err)
	}
	defer f.Close()
	if err := s.stage(ctx, f, c, d, size); err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	if err := s.local.Put(ctx, f, d, size); err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("tier: promote %s: %w", d, err)
	}
	s.kept(ctx, d, size)
	return size, nil
}

// stage copies c into f through a Verifier: a nil error means f holds
// exactly the content d names.
func (s *Store) stage(ctx context.Context, f *os.File, c io.Reader, d digest.Digest, size int64) error {
	vr, err := oci.NewVerifyingReaderContext(ctx, c, d, size)
	if err != nil {
		return fmt.Errorf("tier: promote %s: %w", d, err)
	}
	if _, err := io.Copy(f, vr); err != nil {
		return fmt.Errorf("tier: promote %s from the shared tier: %w", d, err)
	}
	return nil
}

// report counts and logs a promotion's end: once, here, where its error
// is handled (no client waits on it).
func (s *Store) report(d digest.Digest, n int64, err error) {
	log := s.log.WithField("digest", d)
	switch {
	case err == nil:
		s.opts.Metrics.TierPromoted("ok", n)
	case errors.Is(err, oci.ErrDigestMismatch), errors.Is(err, oci.ErrSizeMismatch):
		s.opts.Metrics.TierPromoted("corrupt", 0)
		log.WithError(err).Error("tier: the shared tier's object is not its digest's content; not kept locally")
	case errors.Is(err, context.Canceled) && s.ctx.Err() != nil:
		s.opts.Metrics.TierPromoted("error", 0) // closing: nothing to say
	default:
		s.opts.Metrics.TierPromoted("error", 0)
		log.WithError(err).Warn("tier: promotion into the local tier failed")
	}
}
