package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/upload"
)

// Upload sessions are cache/upload's, opened over the store by
// cache.Cache.OpenUploads; the Writer opens them in a repository and
// links what they deliver to it. Finishing a session hands the verified
// file to cache.Cache.Ingest, the door wharf import uses too.

// StartUpload opens a session in repo for client, an opaque name of who
// asks (a user, or an anonymous client's address): it counts against
// Options.UploadLimits until the session ends, and past them the answer
// is ErrTooManyUploads.
func (w *Writer) StartUpload(ctx context.Context, repo cache.Repo, client string) (UploadStatus, error) {
	st, err := w.uploads.Start(ctx, repo.String(), client)
	if err == nil {
		w.notePush(repo)
	}
	return st, storeErr(err)
}

// Upload reports a session's progress.
func (w *Writer) Upload(ctx context.Context, repo cache.Repo, id string) (UploadStatus, error) {
	st, err := w.uploads.Status(ctx, repo.String(), id)
	return st, storeErr(err)
}

// WriteUpload appends a chunk (PATCH).
func (w *Writer) WriteUpload(ctx context.Context, repo cache.Repo, id string, c Chunk) (UploadStatus, error) {
	st, err := w.uploads.Write(ctx, repo.String(), id, c)
	return st, storeErr(err)
}

// FinishUpload appends a last chunk (which may be empty), checks that
// everything received hashes to d and makes it a stored, pinned blob
// linked to repo. A wrong digest ends the session and keeps nothing.
func (w *Writer) FinishUpload(ctx context.Context, repo cache.Repo, id string, c Chunk, d digest.Digest) error {
	if err := w.uploads.Finish(ctx, repo.String(), id, c, d); err != nil {
		return storeErr(err)
	}
	return w.c.LinkUploaded(ctx, repo, d)
}

// PutBlob stores a whole blob in one request (POST ?digest=). Its
// session, held while the body arrives, counts against client's limits
// and ends with the request: the client has no session to resume.
func (w *Writer) PutBlob(ctx context.Context, repo cache.Repo, client string, c Chunk, d digest.Digest) error {
	st, err := w.StartUpload(ctx, repo, client)
	if err != nil {
		return err
	}
	if err := w.FinishUpload(ctx, repo, st.ID, c, d); err != nil {
		w.uploads.Cancel(ctx, repo.String(), st.ID) // unknown already when the digest was wrong
		return err
	}
	return nil
}

// CancelUpload ends a session and removes what it received.
func (w *Writer) CancelUpload(ctx context.Context, repo cache.Repo, id string) error {
	return storeErr(w.uploads.Cancel(ctx, repo.String(), id))
}

// storeErr makes the sessions' shared store failing to answer the cache's
// ErrStoreUnavailable, which proxy answers with a 503 the client retries.
func storeErr(err error) error {
	if errors.Is(err, upload.ErrStoreUnavailable) && !errors.Is(err, cache.ErrStoreUnavailable) {
		return fmt.Errorf("%w: %w", cache.ErrStoreUnavailable, err)
	}
	return err
}

// Mount makes a stored blob part of repo without a byte sent (a
// cross-repository mount), on the rules of cache.Cache.Mount: from (which
// the caller has checked the client may read) must hold it, or, with no
// from, repo's upstream must vouch for it, or — when anyPushed says no
// access rules separate repositories — it must be pushed or imported
// here. It reports false when it cannot mount: the client then uploads
// the blob.
func (w *Writer) Mount(ctx context.Context, repo cache.Repo, from *cache.Repo, anyPushed bool, d digest.Digest) (bool, error) {
	w.notePush(repo)
	return w.c.Mount(ctx, repo, from, anyPushed, d)
}
