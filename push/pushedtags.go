package push

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/wharf-mirror/wharf/cache"
)

// Tags lists repo's tags: the upstream's (or, when it cannot be reached,
// the cached ones) merged with the tags pushed here, paginated as one
// sorted list. A repository that exists only here lists its pushed tags.
//
// Merging a page stays exact: the upstream's page holds its first n tags
// after last; every tag of the merged first n is either one of them or a
// pushed tag below the page's end, and the upstream's later tags all sort
// after that end.
func (w *Writer) Tags(ctx context.Context, repo cache.Repo, n int, last string) ([]string, bool, error) {
	local, err := w.c.PushedTags(repo)
	if err != nil {
		return nil, false, err
	}
	up, upMore, err := w.c.Tags(ctx, repo, n, last)
	up = w.withoutDeleted(repo, up)
	if len(local) == 0 {
		return up, upMore, err
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, false, err
		}
		// The upstream has no such repository, refuses to say (Docker Hub
		// answers 401 for names it does not hold), or cannot be reached:
		// the tags pushed here are the list.
		w.log.WithError(err).WithField("repo", repo.String()).Debug("listing pushed tags only")
		up, upMore = nil, false
	}
	set := map[string]bool{}
	for _, t := range up {
		set[t] = true
	}
	for _, t := range local {
		if last == "" || t > last {
			set[t] = true
		}
	}
	page, more := cache.Page(slices.Sorted(maps.Keys(set)), n, "")
	return page, more || upMore, nil
}
