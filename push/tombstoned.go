package push

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
)

// Reads on the write path skip what a pending write-through delete hides
// (WriteThrough.Pending): the tag or digest was deleted here and the
// upstream, which still has it, must not give it back. Something pushed
// again since (a pushed tag, a link from a new push) is served.

// Blob is the Cache's, but a blob deleted here is unknown while its
// upstream delete is pending.
func (w *Writer) Blob(ctx context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error) {
	if w.deletedContent(repo, d) {
		return nil, deletedError(repo, d.String())
	}
	return w.c.Blob(ctx, repo, d)
}

// deletedTag reports whether a pending delete hides repo's tag.
func (w *Writer) deletedTag(repo cache.Repo, tag string) bool {
	if w.wt == nil || !w.wt.Pending(repo, index.OpDeleteTag, tag, "") {
		return false
	}
	_, pushed := w.c.PushedTag(repo, tag)
	return !pushed
}

// deletedContent reports whether a pending delete hides d in repo.
func (w *Writer) deletedContent(repo cache.Repo, d digest.Digest) bool {
	if w.wt == nil {
		return false
	}
	if !w.wt.Pending(repo, index.OpDeleteManifest, "", d) && !w.wt.Pending(repo, index.OpDeleteBlob, "", d) {
		return false
	}
	return !w.c.Holds(repo, d)
}

// deletedRef is deletedTag or deletedContent, as ref is a tag or a digest.
func (w *Writer) deletedRef(repo cache.Repo, ref string) bool {
	if d, err := digest.Parse(ref); err == nil {
		return w.deletedContent(repo, d)
	}
	return w.deletedTag(repo, ref)
}

// withoutDeleted drops the tags a pending delete hides from a listing.
func (w *Writer) withoutDeleted(repo cache.Repo, tags []string) []string {
	out := tags[:0:0]
	for _, t := range tags {
		if !w.deletedTag(repo, t) {
			out = append(out, t)
		}
	}
	return out
}

func deletedError(repo cache.Repo, ref string) error {
	return fmt.Errorf("%s@%s: deleted here, the upstream's copy next: %w", repo, ref, cache.ErrNotFound)
}
