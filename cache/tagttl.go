package cache

import "time"

// TagTTLer is an optional capability of an Origin: a tag TTL of its own,
// for a site whose upstreams deserve different trust (a registry whose
// tags never move, one that is slow to ask). Origins without it use
// Options.TagTTL.
type TagTTLer interface {
	TagTTL() time.Duration
}

// tagTTL is how long a cached tag of repo is trusted.
func (c *Cache) tagTTL(repo Repo) time.Duration {
	if o, ok := directOf(c.origins[repo.Upstream]).(TagTTLer); ok {
		return o.TagTTL()
	}
	return c.opts.TagTTL
}
