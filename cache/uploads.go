package cache

import (
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // sha512 digests, which the OCI spec allows for pushes
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
)

// Upload sessions. A session is a file under data/uploads/<uuid> and a
// record in the index (index.UploadRecord) saying how many of its bytes
// count. Each chunk is appended, fsynced, and then recorded; a chunk that
// fails part-way is cut off again, so a session always holds whole chunks
// and a client that lost its connection resumes from the Range it is told.
// Finishing checks the digest of everything received and renames the file
// into blobs/: the same verified-before-visible rule as fills.

// UploadStatus is what a client is told about a session.
type UploadStatus struct {
	ID   string
	Size int64 // bytes received
}

// Chunk describes a request body appended to a session.
type Chunk struct {
	Body io.Reader
	// Length is the body's announced length (Content-Length), -1 unknown.
	Length int64
	// Start is where the client says the chunk goes (Content-Range), -1
	// when it did not say: then the chunk is appended.
	Start int64
	// End is the chunk's last byte by Content-Range, -1 when not given.
	End int64
}

// copyBuffer is the size of reads from a request body: large enough that
// writing a layer costs few syscalls, small enough to stay constant memory.
const copyBuffer = 256 << 10

func (w *Writer) uploadPath(id string) string { return filepath.Join(w.uploadDir, id) }

// lockUpload serialises requests on one session.
func (w *Writer) lockUpload(id string) func() {
	w.uploadsMu.Lock()
	mu, ok := w.uploadLock[id]
	if !ok {
		mu = &sync.Mutex{}
		w.uploadLock[id] = mu
	}
	w.uploadsMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

func (w *Writer) forgetLock(id string) {
	w.uploadsMu.Lock()
	delete(w.uploadLock, id)
	w.uploadsMu.Unlock()
}

// StartUpload opens a session in repo for client, an opaque name of who
// asks (a user, or an anonymous client's address): it counts against
// WriterOptions.UploadLimits until the session ends, and past them the
// answer is ErrTooManyUploads.
func (w *Writer) StartUpload(ctx context.Context, repo Repo, client string) (UploadStatus, error) {
	if limit, err := w.slots.take(client); err != nil {
		w.opts.Metrics.LimitHit("uploads_" + limit)
		return UploadStatus{}, err
	}
	id := uuid.NewString()
	f, err := os.OpenFile(w.uploadPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		w.slots.give(client)
		w.opts.Metrics.StoreError("write")
		return UploadStatus{}, fmt.Errorf("start upload: %w", err)
	}
	f.Close()
	now := w.opts.Now()
	if err := w.index.PutUpload(id, index.UploadRecord{Repo: repo.String(), Client: client, Started: now, Updated: now}); err != nil {
		os.Remove(w.uploadPath(id))
		w.slots.give(client)
		w.opts.Metrics.StoreError("index")
		return UploadStatus{}, err
	}
	w.opts.Metrics.UploadStarted()
	w.notePush(repo)
	return UploadStatus{ID: id}, nil
}

// session returns the record of id if it belongs to repo.
func (w *Writer) session(repo Repo, id string) (index.UploadRecord, error) {
	if _, err := uuid.Parse(id); err != nil {
		return index.UploadRecord{}, fmt.Errorf("upload %q: %w", id, ErrUploadUnknown)
	}
	rec, err := w.index.Upload(id)
	if errors.Is(err, index.ErrNotFound) || (err == nil && rec.Repo != repo.String()) {
		return index.UploadRecord{}, fmt.Errorf("upload %s in %s: %w", id, repo, ErrUploadUnknown)
	}
	return rec, err
}

// Upload reports a session's progress.
func (w *Writer) Upload(repo Repo, id string) (UploadStatus, error) {
	rec, err := w.session(repo, id)
	if err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Size: rec.Size}, nil
}

// WriteUpload appends a chunk (PATCH).
func (w *Writer) WriteUpload(ctx context.Context, repo Repo, id string, c Chunk) (UploadStatus, error) {
	defer w.lockUpload(id)()
	rec, err := w.session(repo, id)
	if err != nil {
		return UploadStatus{}, err
	}
	f, _, rec, err := w.appendChunk(id, rec, c)
	if f != nil {
		f.Close()
	}
	if err != nil {
		return UploadStatus{ID: id, Size: rec.Size}, err
	}
	return UploadStatus{ID: id, Size: rec.Size}, nil
}

// FinishUpload appends a last chunk (which may be empty), checks that
// everything received hashes to d and makes it a stored, pinned blob. A
// wrong digest ends the session and keeps nothing.
func (w *Writer) FinishUpload(ctx context.Context, repo Repo, id string, c Chunk, d digest.Digest) error {
	if err := d.Validate(); err != nil || !d.Algorithm().Available() {
		return fmt.Errorf("%q: %w", d, ErrDigestInvalid)
	}
	defer w.lockUpload(id)()
	rec, err := w.session(repo, id)
	if err != nil {
		return err
	}
	f, h, rec, err := w.appendChunk(id, rec, c)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	defer f.Close()
	var got digest.Digest
	if h != nil && d.Algorithm() == digest.SHA256 {
		got = digest.NewDigest(digest.SHA256, h)
	} else if got, err = rehash(f, d.Algorithm()); err != nil {
		return err
	}
	if got != d {
		w.endUpload(id)
		return fmt.Errorf("upload %s: received bytes hash to %s, not %s: %w", id, got, d, ErrDigestInvalid)
	}
	if err := w.store.Put(ctx, f, d, rec.Size); err != nil {
		w.opts.Metrics.StoreError("write")
		return err
	}
	if err := w.recordContent(d, rec.Size, "", nil, true); err != nil {
		return err
	}
	if err := w.link(repo, d); err != nil {
		return err
	}
	w.endUpload(id)
	return nil
}

// PutBlob stores a whole blob in one request (POST ?digest=). Its
// session, held while the body arrives, counts against client's limits.
func (w *Writer) PutBlob(ctx context.Context, repo Repo, client string, c Chunk, d digest.Digest) error {
	st, err := w.StartUpload(ctx, repo, client)
	if err != nil {
		return err
	}
	err = w.FinishUpload(ctx, repo, st.ID, c, d)
	if err != nil {
		w.endUpload(st.ID) // nothing to resume: the client sent no session
	}
	return err
}

// CancelUpload ends a session and removes what it received.
func (w *Writer) CancelUpload(repo Repo, id string) error {
	defer w.lockUpload(id)()
	if _, err := w.session(repo, id); err != nil {
		return err
	}
	w.endUpload(id)
	return nil
}

// endUpload forgets a session (its file may already be renamed into
// blobs/) and frees its slot; a session already ended is left alone. The
// caller holds its lock.
func (w *Writer) endUpload(id string) {
	os.Remove(w.uploadPath(id))
	defer w.forgetLock(id)
	rec, err := w.index.Upload(id)
	if errors.Is(err, index.ErrNotFound) {
		return
	}
	if err := w.index.DeleteUpload(id); err != nil {
		w.log.WithError(err).WithField("upload", id).Warn("forget upload")
	}
	if err == nil { // unreadable, its client is unknown: the slot is back at the next start
		w.slots.give(rec.Client)
	}
	w.opts.Metrics.UploadEnded()
}

// appendChunk writes c at the end of the session's file and records it.
// It returns the open file and the running sha256 (nil when unknown, then
// the file is hashed again at the end).
func (w *Writer) appendChunk(id string, rec index.UploadRecord, c Chunk) (*os.File, hash.Hash, index.UploadRecord, error) {
	if c.Start >= 0 && c.Start != rec.Size {
		return nil, nil, rec, &RangeError{Size: rec.Size}
	}
	if c.Start >= 0 && c.End >= 0 {
		if c.End < c.Start-1 || (c.Length >= 0 && c.End-c.Start+1 != c.Length) {
			return nil, nil, rec, fmt.Errorf("Content-Range %d-%d for %d bytes: %w", c.Start, c.End, c.Length, ErrSizeInvalid)
		}
		if c.Length < 0 {
			c.Length = c.End - c.Start + 1
		}
	}
	f, err := os.OpenFile(w.uploadPath(id), os.O_RDWR, 0)
	if err != nil {
		w.opts.Metrics.StoreError("read")
		return nil, nil, rec, fmt.Errorf("upload %s: %w", id, err)
	}
	fail := func(err error) (*os.File, hash.Hash, index.UploadRecord, error) {
		f.Close()
		return nil, nil, rec, err
	}
	if err := w.alignUpload(f, &rec); err != nil {
		return fail(err)
	}
	h := sha256.New()
	known := rec.Size == 0
	if !known && len(rec.HashState) > 0 {
		known = h.(encoding.BinaryUnmarshaler).UnmarshalBinary(rec.HashState) == nil
	}
	if _, err := f.Seek(rec.Size, io.SeekStart); err != nil {
		return fail(fmt.Errorf("upload %s: %w", id, err))
	}
	n := int64(0)
	if c.Body != nil && c.Length != 0 {
		src := c.Body
		if c.Length > 0 {
			src = io.LimitReader(c.Body, c.Length)
		}
		n, err = io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, copyBuffer))
		if err == nil && c.Length >= 0 && n != c.Length {
			err = fmt.Errorf("body ended after %d of %d bytes: %w", n, c.Length, ErrSizeInvalid)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("body cut short: %w: %w", ErrSizeInvalid, err)
		}
		if err != nil {
			// Keep whole chunks only: the client resumes from rec.Size.
			f.Truncate(rec.Size)
			return fail(err)
		}
	}
	if n > 0 {
		if err := f.Sync(); err != nil {
			w.opts.Metrics.StoreError("write")
			return fail(fmt.Errorf("upload %s: sync: %w", id, err))
		}
		rec.Size += n
		rec.HashState = nil
		if known {
			rec.HashState, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
		}
		rec.Updated = w.opts.Now()
		if err := w.index.PutUpload(id, rec); err != nil {
			w.opts.Metrics.StoreError("index")
			f.Truncate(rec.Size - n)
			return fail(err)
		}
	}
	if !known {
		h = nil
	}
	return f, h, rec, nil
}

// alignUpload makes the file agree with the record after a crash: bytes
// past rec.Size were never acknowledged and are cut off; a file shorter
// than the record (lost by the filesystem) shrinks the record, and the
// hash is recomputed at the end.
func (w *Writer) alignUpload(f *os.File, rec *index.UploadRecord) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	switch {
	case fi.Size() > rec.Size:
		return f.Truncate(rec.Size)
	case fi.Size() < rec.Size:
		rec.Size, rec.HashState = fi.Size(), nil
	}
	return nil
}

// rehash reads f from the start under alg.
func rehash(f *os.File, alg digest.Algorithm) (digest.Digest, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	dg := alg.Digester()
	if _, err := io.CopyBuffer(dg.Hash(), f, make([]byte, copyBuffer)); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return dg.Digest(), nil
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
	size, err := w.store.Stat(ctx, d)
	if err != nil {
		return false, nil
	}
	switch {
	case from != nil && w.linked(*from, d):
	case from == nil && anyPushed && w.Pinned(d):
	case from == nil && w.mayServe(ctx, repo, d, false) == nil:
	default:
		return false, nil
	}
	if err := w.link(repo, d); err != nil {
		return false, err
	}
	return true, w.pin(d, size)
}

// pin marks stored content as pushed, keeping what the index knows of it.
func (w *Writer) pin(d digest.Digest, size int64) error {
	meta, err := w.index.Blob(d)
	if err != nil {
		return w.recordContent(d, size, "", nil, true)
	}
	if meta.Pinned {
		return nil
	}
	meta.Pinned = true
	return w.index.PutBlob(d, meta)
}
