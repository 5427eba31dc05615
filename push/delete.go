package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
)

// Deletes act on one repository: a digest is deleted from the repository
// named, and only when it holds it (cache.Cache.Holds). Anything else is
// the same 404 as for a digest never stored, so a DELETE tells no one what
// other repositories hold. Content is stored once, so it leaves the disk
// only when no repository links it any more (cache.Cache.Unlink); the
// conformance suite's "atomic" deletes hold per repository. Tags can be
// deleted only where they were pushed: a mirrored tag is the upstream's.
//
// With write-through on, a delete of pushed content is passed on to the
// upstream too (package writethrough), queued before the local delete so
// that no read in between fetches it back.

// DeleteTag removes a tag pushed to repo.
func (w *Writer) DeleteTag(ctx context.Context, repo cache.Repo, tag string) error {
	if w.opts.DisableDeletes {
		return ErrDeleteDisabled
	}
	keys, err := w.deleteTag(repo, tag)
	if err != nil {
		return err
	}
	return w.settleDeletes(ctx, repo, keys)
}

// deleteTag is DeleteTag without waiting for the upstream; it returns the
// write-through job it queued.
func (w *Writer) deleteTag(repo cache.Repo, tag string) ([]string, error) {
	if _, ok := w.c.PushedTag(repo, tag); !ok {
		return nil, fmt.Errorf("tag %s:%s: %w", repo, tag, cache.ErrNotFound)
	}
	keys, err := w.deleteThrough(repo, index.OpDeleteTag, tag, "")
	if err != nil {
		return nil, err
	}
	return keys, w.c.DeletePushedTag(repo, tag)
}

// DeleteManifest removes a manifest from repo, with the tags of repo
// that point at it and its entry in the referrers index.
func (w *Writer) DeleteManifest(ctx context.Context, repo cache.Repo, d digest.Digest) error {
	if w.opts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if !w.c.Holds(repo, d) {
		return notHeld(repo, d)
	}
	m, err := w.c.StoredManifest(d)
	if err != nil {
		return notHeld(repo, d)
	}
	tags, err := w.c.PushedTags(repo)
	if err != nil {
		return err
	}
	// The upstream deletes the manifest's tags with it, but only the ones
	// it has: the tags go as deletes of their own, first.
	var keys []string
	for _, t := range tags {
		if td, ok := w.c.PushedTag(repo, t); ok && td == d {
			k, err := w.deleteTag(repo, t)
			if err != nil && !errors.Is(err, cache.ErrNotFound) {
				return err
			}
			keys = append(keys, k...)
		}
	}
	if w.c.Pinned(d) {
		k, err := w.deleteThrough(repo, index.OpDeleteManifest, "", d)
		if err != nil {
			return err
		}
		keys = append(keys, k...)
	}
	if err := w.c.UnlinkManifest(repo, m); err != nil {
		return err
	}
	return w.settleDeletes(ctx, repo, keys)
}

// DeleteBlob removes a blob from repo.
func (w *Writer) DeleteBlob(ctx context.Context, repo cache.Repo, d digest.Digest) error {
	if w.opts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if !w.c.Holds(repo, d) {
		return notHeld(repo, d)
	}
	var keys []string
	if w.c.Pinned(d) {
		var err error
		if keys, err = w.deleteThrough(repo, index.OpDeleteBlob, "", d); err != nil {
			return err
		}
	}
	if err := w.c.Unlink(repo, d); err != nil {
		return err
	}
	return w.settleDeletes(ctx, repo, keys)
}

// notHeld is the answer for a digest repo does not hold, whether or not
// any other repository does.
func notHeld(repo cache.Repo, d digest.Digest) error {
	return fmt.Errorf("%s@%s: %w", repo, d, cache.ErrNotFound)
}
