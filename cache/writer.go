package cache

import (
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/upload"
)

// Errors of the write path. proxy/errors.go maps each to its v2 code.
var (
	// ErrUploadUnknown: no upload session with that id in that repository.
	ErrUploadUnknown = upload.ErrUnknown
	// ErrUploadInvalid: a chunk that does not continue the upload.
	ErrUploadInvalid = upload.ErrInvalid
	// ErrTooManyUploads: opening a session would pass a cap of
	// UploadLimits.
	ErrTooManyUploads = upload.ErrTooMany
	// ErrDigestInvalid: the bytes received do not hash to the digest given,
	// or the digest's algorithm is not supported.
	ErrDigestInvalid = upload.ErrDigestInvalid
	// ErrSizeInvalid: the body was shorter or longer than announced.
	ErrSizeInvalid = upload.ErrSizeInvalid
	// ErrTooLarge: a manifest over oci.MaxManifestSize.
	ErrTooLarge = errors.New("content too large")
	// ErrManifestInvalid: not a manifest wharf accepts.
	ErrManifestInvalid = errors.New("manifest invalid")
	// ErrManifestBlobUnknown: a pushed manifest references content not here.
	ErrManifestBlobUnknown = errors.New("manifest references unknown content")
	// ErrTagInvalid: a tag the reference grammar refuses.
	ErrTagInvalid = errors.New("tag invalid")
	// ErrDeleteDisabled: deletes are switched off by the configuration.
	ErrDeleteDisabled = errors.New("deletes are disabled")
)

// The upload vocabulary proxy speaks, defined by cache/upload (which
// proxy must not import: it is under the cache).
type (
	// RangeError is ErrUploadInvalid for a chunk that does not start where
	// the upload ends: the client learns Size, the bytes the upload holds.
	RangeError = upload.RangeError
	// UploadStatus is what a client is told about a session.
	UploadStatus = upload.Status
	// Chunk describes a request body appended to a session.
	Chunk = upload.Chunk
	// UploadLimits cap the upload sessions open at once.
	UploadLimits = upload.Limits
)

// WriterOptions configure the write path.
type WriterOptions struct {
	// UploadExpiry is how long an upload session may go without a chunk
	// before it is swept. Default 1h.
	UploadExpiry time.Duration
	// UploadLimits cap the sessions open at once. Default: no caps.
	UploadLimits UploadLimits
	// DisableDeletes answers every DELETE with ErrDeleteDisabled.
	DisableDeletes bool
	// WriteThrough replicates pushed manifests (and what they reference),
	// and deletes, to the upstream they are named under; nil is off. Its
	// owner (cmd/wharf serve) closes it after the Writer.
	WriteThrough WriteThrough
}

// Writer is the write path of a Cache: pushes (upload sessions, manifest
// PUTs), deletes and referrers, and write-through to the upstream. It is
// the complete store proxy serves from, so it also answers reads: most go
// to the Cache unchanged (Repositories, written out so that every
// difference from the Cache is visible), and Manifest, StatBlob, Blob and
// Tags answer differently in repositories pushed to (pushreads.go,
// pushedtags.go, tombstoned.go). Warm and the operator's tools use the
// Cache alone.
//
// Pushed content is stored like mirrored content (same files, same index)
// and pinned, so the LRU never evicts it.
type Writer struct {
	c         *Cache
	wopts     WriterOptions
	uploads   *upload.Sessions
	wt        WriteThrough // nil: pushes stay here
	closeOnce sync.Once
	pushMu    sync.Mutex
	pushRepos map[string]bool // repositories pushed to since start (see pushedTo)
}

// NewWriter opens the write path over c: it opens the upload sessions
// (data/uploads, with their expiry sweep). Write-through, if any, is
// opts.WriteThrough, owned by the caller. Close it before closing c.
func NewWriter(c *Cache, opts WriterOptions) (*Writer, error) {
	if opts.UploadExpiry <= 0 {
		opts.UploadExpiry = time.Hour
	}
	w := &Writer{c: c, wopts: opts, pushRepos: map[string]bool{}, wt: opts.WriteThrough}
	var err error
	w.uploads, err = upload.Open(upload.Options{
		Dir:     filepath.Join(c.opts.Dir, "uploads"),
		Records: c.index,
		Ingest:  c,
		Expiry:  opts.UploadExpiry,
		Limits:  opts.UploadLimits,
		Metrics: c.opts.Metrics,
		Logger:  c.log,
		Now:     c.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Close stops the upload sweep. It does not close the Cache, nor
// write-through (its owner closes it).
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.uploads.Close()
	})
	return nil
}

// Pinned reports whether d is stored and pinned (pushed here).
func (w *Writer) Pinned(d digest.Digest) bool { return w.c.Pinned(d) }
