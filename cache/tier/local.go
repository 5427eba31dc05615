package tier

import (
	"container/list"
	"context"

	"github.com/opencontainers/go-digest"
)

// usage is what the local tier holds, in the order of last open: the
// front of order is the most recent. It lives in memory only; New
// rebuilds it from a walk of the local tier.
type usage struct {
	order *list.List // of copyOf
	at    map[digest.Digest]*list.Element
	total int64
}

type copyOf struct {
	d    digest.Digest
	size int64
}

func newUsage() usage {
	return usage{order: list.New(), at: map[digest.Digest]*list.Element{}}
}

// add records a local copy of d, or marks it used if it is known. New
// content goes to the front: it was just written, for a Put or an open.
func (u *usage) add(d digest.Digest, size int64) {
	if e, ok := u.at[d]; ok {
		u.order.MoveToFront(e)
		return
	}
	u.at[d] = u.order.PushFront(copyOf{d, size})
	u.total += size
}

// touch marks d used, if the local tier holds it.
func (u *usage) touch(d digest.Digest) {
	if e, ok := u.at[d]; ok {
		u.order.MoveToFront(e)
	}
}

// remove forgets d.
func (u *usage) remove(d digest.Digest) {
	if e, ok := u.at[d]; ok {
		u.total -= e.Value.(copyOf).size
		u.order.Remove(e)
		delete(u.at, d)
	}
}

// victims removes the least recently used copies from the record until
// the total is at most low, and returns them.
func (u *usage) victims(low int64) []copyOf {
	var out []copyOf
	for u.total > low {
		c := u.order.Back().Value.(copyOf)
		u.remove(c.d)
		out = append(out, c)
	}
	return out
}

// kept records a new local copy of d, then evicts if the cap is passed.
func (s *Store) kept(ctx context.Context, d digest.Digest, size int64) {
	s.mu.Lock()
	s.used.add(d, size)
	s.mu.Unlock()
	s.evict(ctx)
}

// forget drops d from the record: it was deleted, or found missing.
func (s *Store) forget(d digest.Digest) {
	s.mu.Lock()
	s.used.remove(d)
	total := s.used.total
	s.mu.Unlock()
	s.opts.Metrics.SetTierLocalSize(total)
}

// evict removes local copies, least recently opened first, until the
// local tier is down to LocalLowSize, once it is past LocalMaxSize. The
// victims are chosen under the lock and removed outside it.
//
// A client may be reading a victim: the disk store's content is an open
// *os.File, and on Linux (any POSIX system) a file removed while open
// stays readable through its descriptor until closed, so the reader reads
// on to the end and only later opens miss locally (and are served from
// the shared tier, which keeps its copy). Readers need not be tracked.
//
// A victim being written again at the same moment (a Put or promotion of
// the same digest) may lose its fresh local copy to the removal; the
// record then says it is local while it is not, until the next open
// misses it and forgets it (Open). Nothing is lost: the shared tier has
// it.
func (s *Store) evict(ctx context.Context) {
	s.mu.Lock()
	var out []copyOf
	if s.opts.LocalMaxSize > 0 && s.used.total > s.opts.LocalMaxSize {
		out = s.used.victims(s.opts.LocalLowSize)
	}
	total := s.used.total
	s.mu.Unlock()
	s.opts.Metrics.SetTierLocalSize(total)
	removed := 0
	for _, c := range out {
		if err := s.local.Delete(ctx, c.d); err != nil {
			s.log.WithError(err).WithField("digest", c.d).Warn("tier: evict a local copy")
			continue
		}
		removed++
	}
	s.opts.Metrics.TierLocalEvicted(removed)
}
