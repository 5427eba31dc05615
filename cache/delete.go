package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/manifest"
)

// Deletes remove content from the store at once (the conformance suite's
// "atomic" deletes): blobs are deduplicated across repositories, so a
// deleted digest is gone from every repository of this wharf, and a later
// pull of mirrored content fetches it from the upstream again. Tags can be
// deleted only where they were pushed: a mirrored tag is the upstream's.

// DeleteTag removes a tag pushed to repo.
func (w *Writer) DeleteTag(ctx context.Context, repo Repo, tag string) error {
	if w.wopts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if _, err := w.index.LocalTag(repo.String(), tag); err != nil {
		return fmt.Errorf("tag %s:%s: %w", repo, tag, ErrNotFound)
	}
	return w.index.DeleteLocalTag(repo.String(), tag)
}

// DeleteManifest removes a manifest, the tags of repo that point at it
// and its entry in the referrers index.
func (w *Writer) DeleteManifest(ctx context.Context, repo Repo, d digest.Digest) error {
	if w.wopts.DisableDeletes {
		return ErrDeleteDisabled
	}
	m, err := w.storedManifest(d)
	if err != nil {
		return fmt.Errorf("manifest %s@%s: %w", repo, d, ErrNotFound)
	}
	tags, err := w.index.LocalTags(repo.String())
	if err != nil {
		return err
	}
	for _, t := range tags {
		if rec, err := w.index.LocalTag(repo.String(), t); err == nil && rec.Digest == d {
			if err := w.index.DeleteLocalTag(repo.String(), t); err != nil {
				return err
			}
		}
	}
	if p, err := manifest.Parse(m.Body); err == nil && p.Subject != nil {
		if err := w.index.DeleteReferrer(repo.String(), p.Subject.Digest, d); err != nil {
			return err
		}
	}
	w.manifests.Remove(d)
	return w.removeContent(d)
}

// DeleteBlob removes a blob.
func (w *Writer) DeleteBlob(ctx context.Context, repo Repo, d digest.Digest) error {
	if w.wopts.DisableDeletes {
		return ErrDeleteDisabled
	}
	if _, err := w.disk.Stat(d); err != nil {
		return fmt.Errorf("blob %s@%s: %w", repo, d, ErrNotFound)
	}
	w.manifests.Remove(d)
	return w.removeContent(d)
}

// removeContent deletes d from the index and the disk, ordered against
// eviction and fills by the store's content lock. A client reading d right
// now keeps its open file.
func (w *Writer) removeContent(d digest.Digest) error {
	w.contentMu.Lock()
	defer w.contentMu.Unlock()
	meta, err := w.index.Blob(d)
	if errors.Is(err, index.ErrNotFound) {
		return w.disk.Remove(d) // a file the index never heard of
	}
	if err != nil {
		return err
	}
	return w.removeLocked(d, meta.Size)
}
