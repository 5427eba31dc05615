package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
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
// an outage be the moment to shadow a name.

// ErrMirroredTag: a push would replace a tag the upstream serves.
var ErrMirroredTag = errors.New("tag is mirrored from the upstream")

// TagShadower is an optional capability of an Origin: whether tags pushed
// to wharf may replace tags it serves. Origins without it (and that
// write-through does not push to) refuse such pushes.
type TagShadower interface {
	ShadowTags() bool
}

// mayPushTag checks that pushing tag to repo replaces no tag repo's
// upstream serves.
func (w *Writer) mayPushTag(ctx context.Context, repo Repo, tag string) error {
	if _, err := w.c.index.LocalTag(repo.String(), tag); err == nil {
		return nil
	}
	o, err := w.c.origin(repo)
	if err != nil {
		return nil // no upstream to shadow
	}
	if s, ok := o.(TagShadower); ok && s.ShadowTags() {
		return nil
	}
	if w.wt != nil && w.wt.Replicates(repo) {
		return nil // written through: the upstream gets the same tag
	}
	recs, err := w.c.index.TagRecords(repo.String(), tag)
	if err != nil {
		return fmt.Errorf("tag records of %s:%s: %w", repo, tag, err)
	}
	mirrored := fmt.Errorf("%s:%s is mirrored from %s: a push may not replace a tag the upstream serves: %w", repo.Path, tag, repo.Upstream, ErrMirroredTag)
	if w.c.opts.Offline {
		if len(recs) > 0 {
			return mirrored
		}
		return nil
	}
	_, err = o.HeadManifest(ctx, repo.Path, tag, oci.ServedManifests)
	switch {
	case err == nil, errors.Is(err, upstream.ErrNoDigest):
		return mirrored
	case errors.Is(err, upstream.ErrNotFound), errors.Is(err, upstream.ErrUnauthorized), errors.Is(err, upstream.ErrDenied):
		// Not served to wharf: Docker Hub answers 401 for names it does
		// not hold, so "not yours" is "not there" as far as pulls go.
		return nil
	case len(recs) > 0:
		return mirrored
	}
	return fmt.Errorf("pushing %s:%s: cannot check that %s does not serve it: %w", repo.Path, tag, repo.Upstream, err)
}
