package tier

import "github.com/opencontainers/go-digest"

// OnPromoted calls fn as each promotion ends, with its error (nil when
// the copy is local).
func (s *Store) OnPromoted(fn func(d digest.Digest, err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.promoted = fn
}

// Stopping is closed once Close has cancelled the promotions.
func (s *Store) Stopping() <-chan struct{} { return s.ctx.Done() }
