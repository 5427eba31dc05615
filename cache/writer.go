package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Errors of the write path. proxy/errors.go maps each to its v2 code.
var (
	// ErrUploadUnknown: no upload session with that id in that repository.
	ErrUploadUnknown = errors.New("blob upload unknown")
	// ErrUploadInvalid: a chunk that does not continue the upload.
	ErrUploadInvalid = errors.New("blob upload invalid")
	// ErrDigestInvalid: the bytes received do not hash to the digest given,
	// or the digest's algorithm is not supported.
	ErrDigestInvalid = errors.New("digest invalid")
	// ErrSizeInvalid: the body was shorter or longer than announced.
	ErrSizeInvalid = errors.New("size invalid")
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

// RangeError is ErrUploadInvalid for a chunk that does not start where the
// upload ends: the client learns Size, the bytes the upload holds.
type RangeError struct{ Size int64 }

func (e *RangeError) Error() string {
	return fmt.Sprintf("chunk does not continue the upload at byte %d", e.Size)
}

// Unwrap makes a RangeError an ErrUploadInvalid.
func (e *RangeError) Unwrap() error { return ErrUploadInvalid }

// WriterOptions configure the write path.
type WriterOptions struct {
	// UploadExpiry is how long an upload session may go without a chunk
	// before it is swept. Default 1h.
	UploadExpiry time.Duration
	// UploadLimits cap the sessions open at once. Default: no caps.
	UploadLimits UploadLimits
	// DisableDeletes answers every DELETE with ErrDeleteDisabled.
	DisableDeletes bool
	// WriteThrough replicates pushed manifests (and what they reference) to
	// the upstream they are named under; nil is off.
	WriteThrough *WriteThroughOptions
}

// Writer is the write path of a Cache: pushes (upload sessions, manifest
// PUTs), deletes and referrers, and write-through to the upstream. It
// embeds the Cache so that it is a complete store for the proxy: reads go
// to the Cache, tag lists merge what was pushed here.
//
// Pushed content is stored like mirrored content (same files, same index)
// and pinned, so the LRU never evicts it.
type Writer struct {
	*Cache
	wopts      WriterOptions
	uploadDir  string
	wt         *writeThrough
	stop       chan struct{}
	done       sync.WaitGroup
	closeOnce  sync.Once
	uploadsMu  sync.Mutex
	uploadLock map[string]*sync.Mutex // one request at a time per session
	slots      *uploadSlots           // open sessions, in all and per client
	pushRepos  map[string]bool        // repositories pushed to since start (see pushedTo)
}

// NewWriter opens the write path over c: it prepares data/uploads, counts
// the sessions a restart left, and starts the expiry sweep and the
// write-through worker. Close it before closing c.
func NewWriter(c *Cache, opts WriterOptions) (*Writer, error) {
	if opts.UploadExpiry <= 0 {
		opts.UploadExpiry = time.Hour
	}
	w := &Writer{
		Cache: c, wopts: opts, uploadDir: filepath.Join(c.opts.Dir, "uploads"),
		stop: make(chan struct{}), uploadLock: map[string]*sync.Mutex{}, pushRepos: map[string]bool{},
		slots: newUploadSlots(opts.UploadLimits),
	}
	if err := os.MkdirAll(w.uploadDir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", w.uploadDir, err)
	}
	if err := w.recoverUploads(); err != nil {
		return nil, err
	}
	w.done.Add(1)
	go w.sweepLoop()
	if opts.WriteThrough != nil {
		wt, err := newWriteThrough(w, *opts.WriteThrough)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.wt = wt
	}
	return w, nil
}

// Close stops the sweep and the write-through worker (a push in flight is
// abandoned and stays queued). It does not close the Cache.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		if w.wt != nil {
			w.wt.close()
		}
		w.done.Wait()
	})
	return nil
}
