package cache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/wharf-mirror/wharf/upstream"
)

// Tags lists repo's tags: the upstream's page when it answers, else the
// tags this cache holds, paginated the same way (n < 0: no limit).
func (c *Cache) Tags(ctx context.Context, repo Repo, n int, last string) ([]string, bool, error) {
	o, err := c.origin(ctx, repo)
	if err != nil {
		return nil, false, err
	}
	tags, more, err := o.Tags(ctx, repo.Path, n, last)
	if err == nil {
		return tags, more, nil
	}
	if errors.Is(err, upstream.ErrNotFound) {
		err = fmt.Errorf("tags of %s: %w: %w", repo, ErrNotFound, err)
	}
	cached, lerr := c.index.Tags(repo.String())
	if lerr != nil || len(cached) == 0 || !unreachable(err) {
		return nil, false, err
	}
	c.opts.Metrics.Stale("tags_list")
	logCtx(c.log, ctx).WithError(err).WithField("repo", repo.String()).Warn("upstream unreachable; listing cached tags")
	tags, more = Page(cached, n, last)
	return tags, more, nil
}

// Repositories is Catalog for a caller without a request of its own.
func (c *Cache) Repositories() ([]Repo, error) { return c.Catalog(c.life) }

// Catalog lists the repositories this cache holds, sorted by name; with
// records, those pushed to or mirrored through any replica too (listed
// from the bucket at most every few seconds: sharedcatalog.go). ctx is
// the client's request.
func (c *Cache) Catalog(ctx context.Context) ([]Repo, error) {
	names, err := c.index.Repositories()
	if err != nil {
		return nil, err
	}
	return repos(c.sharedRepositories(ctx, names)), nil
}

// localRepositories lists the repositories this replica's index holds.
func (c *Cache) localRepositories() ([]Repo, error) {
	names, err := c.index.Repositories()
	if err != nil {
		return nil, err
	}
	return repos(names), nil
}

// repos parses repository names, skipping any without an upstream.
func repos(names []string) []Repo {
	out := make([]Repo, 0, len(names))
	for _, n := range names {
		up, path, ok := strings.Cut(n, "/")
		if ok {
			out = append(out, Repo{Upstream: up, Path: path})
		}
	}
	return out
}

// Page returns the entries of a sorted list after last, at most n of them
// (n < 0: all), and whether more follow.
func Page(sorted []string, n int, last string) ([]string, bool) {
	start := 0
	if last != "" {
		start = sort.SearchStrings(sorted, last)
		if start < len(sorted) && sorted[start] == last {
			start++
		}
	}
	rest := sorted[start:]
	if n < 0 || n >= len(rest) {
		return rest, false
	}
	return rest[:n], true
}
