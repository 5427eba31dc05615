package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
)

// A fill's upstream answering under a repository's name is not yet a
// reason to link the repository: a hostile upstream can answer 200 and
// send wrong bytes, and a link left behind would open whatever is stored
// under that digest later (another team's push) to the repository's
// readers (invariant 8). So the answers are kept here, in memory, for the
// running fill of each digest; the fill's commit, which follows the
// bytes' verification, turns them into links, and a fill that ends
// otherwise drops them. A follower of the running fill may read it
// meanwhile: its bytes are verified before its end.
type fillVouches struct {
	mu sync.Mutex
	// m holds, per digest being filled, the repositories vouched for it:
	// true when only a HEAD said so, false when the fill's own
	// upstream reads were answered under the repository's name.
	m map[digest.Digest]map[Repo]bool
}

// add records that repo's upstream answered for d. start says the fill's
// own read answered (it opens the entry); a HEAD's answer (start false)
// is kept only while the fill it checked runs, and add reports whether
// it was.
func (v *fillVouches) add(d digest.Digest, repo Repo, start bool) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	rs, ok := v.m[d]
	switch {
	case !ok && !start:
		return false
	case !ok:
		if v.m == nil {
			v.m = map[digest.Digest]map[Repo]bool{}
		}
		rs = map[Repo]bool{}
		v.m[d] = rs
	}
	if headOnly, seen := rs[repo]; !seen || headOnly {
		rs[repo] = !start
	}
	return true
}

// has reports whether repo was vouched for the running fill of d.
func (v *fillVouches) has(d digest.Digest, repo Repo) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.m[d][repo]
	return ok
}

// take removes and returns what was vouched for d.
func (v *fillVouches) take(d digest.Digest) map[Repo]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	rs := v.m[d]
	delete(v.m, d)
	return rs
}

// fillCommitted links the repositories vouched for d, whose bytes are now
// verified and stored. One vouched for by a HEAD alone is not linked if d
// was pushed meanwhile (mayServe asks its upstream for the bytes then).
func (c *Cache) fillCommitted(d digest.Digest) error {
	var err error
	for repo, headOnly := range c.vouches.take(d) {
		if headOnly && c.Pinned(d) {
			continue
		}
		if lerr := c.link(repo, d); lerr != nil && err == nil {
			err = lerr
		}
	}
	return err
}

// mayFollow checks that repo may read the running fill of d, which it
// joined: vouched for already, linked, or its upstream answers a HEAD,
// which is remembered for the fill (add), not linked.
func (c *Cache) mayFollow(ctx context.Context, repo Repo, d digest.Digest) error {
	if c.vouches.has(d, repo) || c.linked(repo, d) {
		return nil
	}
	o, err := c.origin(ctx, repo)
	if err != nil {
		return fmt.Errorf("%s is not known to %s: %w", d, repo, ErrNotFound)
	}
	if _, err := o.HeadBlob(ctx, repo.Path, d); err != nil {
		return notShown(repo, d, err)
	}
	// Ended meanwhile: this read follows the fill it joined, whose bytes
	// are checked; nothing is remembered for the next.
	c.vouches.add(d, repo, false)
	return nil
}
