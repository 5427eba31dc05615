package upload

import (
	"fmt"
	"sync"
)

// Limits cap the upload sessions open at once. Every open session is a
// file in data/uploads and an index record kept until it finishes, is
// cancelled or expires, so without a cap one client can open them by the
// thousand. The cap per client keeps one client (a user, or an anonymous
// client address) from taking every slot of the global one.
type Limits struct {
	// Max is the most sessions open at once, all clients together; 0 is
	// no limit.
	Max int
	// PerClient is the most sessions one client holds at once; 0 is no
	// limit.
	PerClient int
	// ChunkBuffers is the most memory, in bytes, that chunks of unknown
	// length take at once in shared sessions, one part each while they
	// stream (buffers.go); a request past it waits. 0 is
	// DefaultChunkBuffers.
	ChunkBuffers int64
}

// slots counts open sessions, in all and per client. The counts are
// rebuilt from the index at start (each record names its client), so a
// restart neither forgets sessions nor frees their slots.
type slots struct {
	limits Limits

	mu       sync.Mutex
	total    int
	byClient map[string]int
}

func newSlots(l Limits) *slots {
	return &slots{limits: l, byClient: map[string]int{}}
}

// take reserves a slot for client, or says which cap it would pass
// ("global" or "client") with an ErrTooMany.
func (s *slots) take(client string) (limit string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.byClient[client]; s.limits.PerClient > 0 && n >= s.limits.PerClient {
		return "client", fmt.Errorf("%w: this client holds %d, the most one client may: finish, cancel or abandon some first", ErrTooMany, n)
	}
	if s.limits.Max > 0 && s.total >= s.limits.Max {
		return "global", fmt.Errorf("%w: %d, the most this registry allows at once", ErrTooMany, s.total)
	}
	s.add(client)
	return "", nil
}

// add counts a session without checking the caps; s.mu is held, or the
// slots are not shared yet (at start).
func (s *slots) add(client string) {
	s.total++
	s.byClient[client]++
}

// give frees client's slot.
func (s *slots) give(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.byClient[client]--; s.byClient[client] <= 0 {
		delete(s.byClient, client)
	}
}
