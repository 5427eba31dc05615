package cache

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
)

// Upload sessions are cache/upload's; the Writer opens them in a
// repository and links what they deliver to it. Finishing a session hands
// the verified file to Ingest, the door wharf import uses too.

// StartUpload opens a session in repo for client, an opaque name of who
// asks (a user, or an anonymous client's address): it counts against
// WriterOptions.UploadLimits until the session ends, and past them the
// answer is ErrTooManyUploads.
func (w *Writer) StartUpload(ctx context.Context, repo Repo, client string) (UploadStatus, error) {
	st, err := w.uploads.Start(repo.String(), client)
	if err == nil {
		w.notePush(repo)
	}
	return st, err
}

// Upload reports a session's progress.
func (w *Writer) Upload(repo Repo, id string) (UploadStatus, error) {
	return w.uploads.Status(repo.String(), id)
}

// WriteUpload appends a chunk (PATCH).
func (w *Writer) WriteUpload(ctx context.Context, repo Repo, id string, c Chunk) (UploadStatus, error) {
	return w.uploads.Write(repo.String(), id, c)
}

// FinishUpload appends a last chunk (which may be empty), checks that
// everything received hashes to d and makes it a stored, pinned blob
// linked to repo. A wrong digest ends the session and keeps nothing.
func (w *Writer) FinishUpload(ctx context.Context, repo Repo, id string, c Chunk, d digest.Digest) error {
	if err := w.uploads.Finish(ctx, repo.String(), id, c, d); err != nil {
		return err
	}
	return w.c.link(repo, d)
}

// PutBlob stores a whole blob in one request (POST ?digest=). Its
// session, held while the body arrives, counts against client's limits
// and ends with the request: the client has no session to resume.
func (w *Writer) PutBlob(ctx context.Context, repo Repo, client string, c Chunk, d digest.Digest) error {
	st, err := w.StartUpload(ctx, repo, client)
	if err != nil {
		return err
	}
	if err := w.FinishUpload(ctx, repo, st.ID, c, d); err != nil {
		w.uploads.Cancel(repo.String(), st.ID) // unknown already when the digest was wrong
		return err
	}
	return nil
}

// CancelUpload ends a session and removes what it received.
func (w *Writer) CancelUpload(repo Repo, id string) error {
	return w.uploads.Cancel(repo.String(), id)
}

// Ingest makes f, a staged file whose size bytes the caller hashed to d,
// the stored content d: Store.Put and then its index record, pinned for
// pushes and imports (which the LRU must never evict). It is the one door
// for verified content that arrives whole (upload sessions, wharf
// import); fills, which followers read while they grow, commit through
// fill.Group. On failure f is left to the caller.
func (c *Cache) Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error {
	if err := c.store.Put(ctx, f, d, size); err != nil {
		c.opts.Metrics.StoreError("write")
		return fmt.Errorf("store %s: %w", d, err)
	}
	return c.recordContent(d, size, "", nil, pinned)
}

// Mount makes a stored blob part of repo without a byte sent (a
// cross-repository mount). A mount must not open content by digest alone,
// so the blob must be one from may serve (the caller has checked that the
// client may read from), or, with no from, one repo's upstream vouches for
// or — when anyPushed says no access rules separate repositories — one
// pushed or imported here (never a private upstream's). It reports false
// when it cannot mount: the client then uploads the blob.
func (w *Writer) Mount(ctx context.Context, repo Repo, from *Repo, anyPushed bool, d digest.Digest) (bool, error) {
	w.notePush(repo)
	size, err := w.c.store.Stat(ctx, d)
	if err != nil {
		return false, nil
	}
	switch {
	case from != nil && w.c.linked(*from, d):
	case from == nil && anyPushed && w.c.Pinned(d):
	case from == nil && w.c.mayServe(ctx, repo, d, false) == nil:
	default:
		return false, nil
	}
	if err := w.c.link(repo, d); err != nil {
		return false, err
	}
	return true, w.c.pin(d, size)
}

// pin marks stored content as pushed, keeping what the index knows of it.
func (c *Cache) pin(d digest.Digest, size int64) error {
	meta, err := c.index.Blob(d)
	if err != nil {
		return c.recordContent(d, size, "", nil, true)
	}
	if meta.Pinned {
		return nil
	}
	meta.Pinned = true
	return c.index.PutBlob(d, meta)
}
