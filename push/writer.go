package push

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/upload"
)

// Errors of the write path alone; proxy/errors.go maps each to its v2
// code. The errors of content a client sends (ErrDigestInvalid,
// ErrManifestInvalid, ErrTagInvalid and the rest) are the cache's, shared
// with import: cache.Err*.
var (
	// ErrUploadUnknown: no upload session with that id in that repository.
	ErrUploadUnknown = upload.ErrUnknown
	// ErrUploadInvalid: a chunk that does not continue the upload.
	ErrUploadInvalid = upload.ErrInvalid
	// ErrTooManyUploads: opening a session would pass a cap of
	// UploadLimits.
	ErrTooManyUploads = upload.ErrTooMany
	// ErrUploadBusy: a chunk waited too long for memory to stream
	// through; the client retries it.
	ErrUploadBusy = upload.ErrBusy
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

// Options configure the write path.
type Options struct {
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
	Logger       logrus.FieldLogger
}

// Writer is the write path over a Cache: pushes (upload sessions,
// manifest PUTs), deletes and referrers, and write-through to the
// upstream. It is the complete store proxy serves from, so it also
// answers reads: Manifest, StatBlob, Blob and Tags answer differently in
// repositories pushed to (pushreads.go, pushedtags.go, tombstoned.go),
// and the rest go to the Cache unchanged, written out so that every
// difference from the Cache is visible. Warm and the operator's tools use
// the Cache alone.
//
// Pushed content is stored like mirrored content (same files, same index)
// and pinned, so the LRU never evicts it.
type Writer struct {
	c         *cache.Cache
	opts      Options
	log       logrus.FieldLogger
	uploads   *upload.Sessions
	wt        WriteThrough // nil: pushes stay here
	closeOnce sync.Once
	pushMu    sync.Mutex
	pushRepos map[string]bool // repositories pushed to since start (see pushedTo)
}

// New opens the write path over c: it opens the upload sessions
// (data/uploads, with their expiry sweep). Write-through, if any, is
// opts.WriteThrough, owned by the caller. Close the Writer before c.
func New(c *cache.Cache, opts Options) (*Writer, error) {
	if opts.UploadExpiry <= 0 {
		opts.UploadExpiry = time.Hour
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	w := &Writer{c: c, opts: opts, log: opts.Logger, pushRepos: map[string]bool{}, wt: opts.WriteThrough}
	var err error
	if w.uploads, err = c.OpenUploads(opts.UploadExpiry, opts.UploadLimits); err != nil {
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
