package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
)

// Deletes act on one repository: a digest is deleted from the repository
// named, and only when it is linked to it (see links.go). Anything else is
// the same 404 as for a digest never stored, so a DELETE tells no one what
// other repositories hold. Content is stored once, so it leaves the disk
// only when no repository links it any more; the conformance suite's
// "atomic" deletes hold per repository. Tags can be deleted only where
// they were pushed: a mirrored tag is the upstream's.
//
// With write-through on, a delete of pushed content is passed on to the
// upstream too (package writethrough), queued before the local delete so
// that no read in between fetches it back.

// DeleteTag removes a tag pushed to repo.
func (w *Writer) DeleteTag(ctx context.Context, repo Repo, tag string) error {
	if w.wopts.DisableDeletes {
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
func (w *Writer) deleteTag(repo Repo, tag string) ([]string, error) {
	if _, err := w.c.index.LocalTag(repo.String(), tag); err != nil {
		return nil, fmt.Errorf("tag %s:%s: %w", repo, tag, ErrNotFound)
	}
	keys, err := w.deleteThrough(repo, index.OpDeleteTag, tag, "")
	if err != nil {
		return nil, err
	}
	w.c.forgetTag(repo, tag) // what the upstream once said of it: the upstream's tag goes too
	return keys, w.c.index.DeleteLocalTag(repo.String(), tag)
}

// DeleteManifest removes a manifest from repo, with the tags of repo
// that point at it and its entry in the referrers index.
func (w *Writer) DeleteManifest(ctx context.Context, repo Repo, d digest.Digest) error {
	if w.wopts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if !w.c.linked(repo, d) {
		return notHeld(repo, d)
	}
	m, err := w.c.storedManifest(d)
	if err != nil {
		return notHeld(repo, d)
	}
	tags, err := w.c.index.LocalTags(repo.String())
	if err != nil {
		return err
	}
	// The upstream deletes the manifest's tags with it, but only the ones
	// it has: the tags go as deletes of their own, first.
	var keys []string
	for _, t := range tags {
		if rec, err := w.c.index.LocalTag(repo.String(), t); err == nil && rec.Digest == d {
			k, err := w.deleteTag(repo, t)
			if err != nil && !errors.Is(err, ErrNotFound) {
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
	if p, err := oci.ParseManifest(m.Body); err == nil && p.Subject != nil {
		if err := w.c.index.DeleteReferrer(repo.String(), p.Subject.Digest, d); err != nil {
			return err
		}
	}
	if err := w.c.unlinkContent(repo, d); err != nil {
		return err
	}
	return w.settleDeletes(ctx, repo, keys)
}

// DeleteBlob removes a blob from repo.
func (w *Writer) DeleteBlob(ctx context.Context, repo Repo, d digest.Digest) error {
	if w.wopts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if !w.c.linked(repo, d) {
		return notHeld(repo, d)
	}
	var keys []string
	if w.c.Pinned(d) {
		var err error
		if keys, err = w.deleteThrough(repo, index.OpDeleteBlob, "", d); err != nil {
			return err
		}
	}
	if err := w.c.unlinkContent(repo, d); err != nil {
		return err
	}
	return w.settleDeletes(ctx, repo, keys)
}

// notHeld is the answer for a digest repo does not hold, whether or not
// any other repository does.
func notHeld(repo Repo, d digest.Digest) error {
	return fmt.Errorf("%s@%s: %w", repo, d, ErrNotFound)
}

// unlinkContent removes repo's link to d and, when no repository links d
// any more, d itself through the one removal path, ordered against
// eviction and fills by the store's content lock. A client reading d
// right now keeps its open file.
func (c *Cache) unlinkContent(repo Repo, d digest.Digest) error {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	had, held, err := c.index.Unlink(repo.String(), d)
	c.links.Remove(linkCacheKey(repo, d))
	if err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	if !had {
		return notHeld(repo, d) // deleted by a request that came first
	}
	if held {
		return nil
	}
	meta, err := c.index.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return c.store.Delete(c.life, d) // a file the index never heard of
	}
	if err != nil {
		return err
	}
	return c.removeLocked(d, meta.Size)
}
