package push

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// The reads proxy serves through the Writer. Manifest and StatBlob differ
// from the Cache's where a push is under way; Blob (tombstoned.go) and
// Tags (pushedtags.go) where something was deleted or tagged here.

// Manifest is the Cache's, except that in a repository being pushed to
// (it has pushed tags, or received uploads since wharf started) a
// manifest the upstream cannot be asked about is reported missing:
// go-containerregistry HEADs a manifest before pushing it and stops on a
// 5xx. Elsewhere a pull still learns that the upstream failed.
func (w *Writer) Manifest(ctx context.Context, repo cache.Repo, ref string, accept []string) (*cache.Manifest, error) {
	if w.deletedRef(repo, ref) {
		return nil, deletedError(repo, ref)
	}
	m, err := w.c.Manifest(ctx, repo, ref, accept)
	if err != nil && cache.Unreachable(err) && w.pushedTo(repo) {
		return nil, fmt.Errorf("manifest %s@%s: %w (the upstream cannot say: %v)", repo, ref, cache.ErrNotFound, err)
	}
	return m, err
}

// pushedTo reports whether repo has pushed tags or received pushes.
func (w *Writer) pushedTo(repo cache.Repo) bool {
	w.pushMu.Lock()
	recent := w.pushRepos[repo.String()]
	w.pushMu.Unlock()
	if recent {
		return true
	}
	tags, err := w.c.PushedTags(repo)
	return err == nil && len(tags) > 0
}

// notePush remembers that repo is being pushed to.
func (w *Writer) notePush(repo cache.Repo) {
	w.pushMu.Lock()
	if len(w.pushRepos) > 10000 { // bounded: a hint, not a record
		clear(w.pushRepos)
	}
	w.pushRepos[repo.String()] = true
	w.pushMu.Unlock()
}

// StatBlob is the Cache's, except that when the upstream cannot be reached
// a blob that is not here is reported missing rather than the request
// failing: pushing clients (docker, go-containerregistry) HEAD every blob
// before uploading it and give up on a 5xx, and a push to wharf must work
// while the upstream is down. A GET still reports the upstream's failure.
func (w *Writer) StatBlob(ctx context.Context, repo cache.Repo, d digest.Digest) (int64, error) {
	if w.deletedContent(repo, d) {
		return 0, deletedError(repo, d.String())
	}
	size, err := w.c.StatBlob(ctx, repo, d)
	if err != nil && cache.Unreachable(err) {
		return 0, fmt.Errorf("blob %s@%s: %w (the upstream cannot say: %v)", repo, d, cache.ErrNotFound, err)
	}
	return size, err
}

// Repositories is the Cache's: pushed repositories are recorded in the
// same index as mirrored ones.
func (w *Writer) Repositories() ([]cache.Repo, error) { return w.c.Repositories() }

// Catalog is the Cache's, for a client's request.
func (w *Writer) Catalog(ctx context.Context) ([]cache.Repo, error) { return w.c.Catalog(ctx) }
