package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/wharf-mirror/wharf/cache"
)

// A mirrored name belongs to its upstream. Pushed tags are found before
// the upstream is asked, so a push over a tag the upstream serves would
// change what every client of the site pulls under that name. A tag push
// is therefore refused where the upstream serves the tag, unless the
// operator let pushes shadow that upstream's tags (TagShadower, or
// write-through: the push then reaches the upstream too).
//
// The check is made when a tag is first pushed: a tag already pushed here
// is the site's, and moving it needs no upstream. Where the upstream
// cannot be asked, a tag wharf has mirrored is refused and any other is
// refused as unverifiable (the client may retry): failing open would let
// an outage be the moment to shadow a name (cache.Cache.UpstreamServesTag
// answers as much).

// ErrMirroredTag: a push would replace a tag the upstream serves.
var ErrMirroredTag = errors.New("tag is mirrored from the upstream")

// TagShadower is an optional capability of a cache.Origin: whether tags
// pushed to wharf may replace tags it serves. Origins without it (and
// that write-through does not push to) refuse such pushes.
type TagShadower interface {
	ShadowTags() bool
}

// mayPushTag checks that pushing tag to repo replaces no tag repo's
// upstream serves.
func (w *Writer) mayPushTag(ctx context.Context, repo cache.Repo, tag string) error {
	if _, ok := w.c.PushedTag(repo, tag); ok {
		return nil
	}
	o, err := w.c.Origin(repo)
	if err != nil {
		return nil // no upstream to shadow
	}
	if s, ok := o.(TagShadower); ok && s.ShadowTags() {
		return nil
	}
	if w.wt != nil && w.wt.Replicates(repo) {
		return nil // written through: the upstream gets the same tag
	}
	served, err := w.c.UpstreamServesTag(ctx, repo, tag)
	if err != nil {
		return fmt.Errorf("pushing %s:%s: cannot check that %s does not serve it: %w", repo.Path, tag, repo.Upstream, err)
	}
	if served {
		return fmt.Errorf("%s:%s is mirrored from %s: a push may not replace a tag the upstream serves: %w", repo.Path, tag, repo.Upstream, ErrMirroredTag)
	}
	return nil
}
