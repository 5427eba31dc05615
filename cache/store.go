package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/oci"
)

// Store is where verified content lives under its digest: blob and
// manifest bytes alike. The index says what the content is; the Store
// only keeps bytes. cache/disk is the first implementation (and the
// default, in Options.Dir); cache/storetest is the table every
// implementation must pass.
//
// Content reaches a Store in two steps, so that nothing unverified is ever
// visible: its writer (a fill, an upload session, an import) stages the
// bytes in a local temp file and hashes them as they pass, then hands the
// file to Put under the digest they hashed to. Staging is always local,
// whatever the store: fills let followers read the growing file, and
// uploads append to it across requests.
//
// A missing digest is an error wrapping fs.ErrNotExist. The methods speak
// only the standard library's and go-digest's types, so that an
// implementation need not import this package.
type Store interface {
	// TempFile creates an empty local file to stage content in. The caller
	// writes it and then Puts it, or closes and removes it. What a crash
	// leaves staged is swept when the store is opened again.
	TempFile() (*os.File, error)
	// Put makes the bytes of the staged file f visible as d. The caller
	// has hashed them to d as they were written (hashing again here would
	// double the cost of every fill and push); Put refuses a file that
	// does not hold exactly size bytes. Put is atomic: nothing of d is
	// visible before all of it is. A Put that fails after that point (the
	// disk store's directory sync, after its rename) may leave d whole and
	// visible but unindexed, which reconcile adopts. On success the staged path is gone (moved
	// or copied away) but f stays open, so readers holding it read on; on
	// failure f is left to the caller. Putting a digest already stored is
	// not an error.
	Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error
	// Open opens d for reading.
	Open(ctx context.Context, d digest.Digest) (Content, error)
	// Stat returns the size of d.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Delete removes d; deleting what is not stored is not an error.
	// Whether a reader that opened d before reads on is the store's own
	// (the disk store's does: its file stays open). Eviction skips content
	// being read, but checks that without waiting for removals, so a
	// reader that opens d just as it is evicted, or as a repository delete
	// removes it, can race Delete.
	Delete(ctx context.Context, d digest.Digest) error
	// Walk calls fn for every stored digest, in no particular order, and
	// stops at the first error fn returns.
	Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
}

// Content is stored content open for reading; Stat gives its size and
// modification time. The disk store's is an *os.File, which
// http.ServeContent sends with sendfile. It is an alias of an unnamed
// interface so that implementations can spell the same type without
// importing cache.
type Content = interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// putBytes stores small content (a manifest) given as bytes, checking
// first that they hash to d.
func (c *Cache) putBytes(ctx context.Context, d digest.Digest, b []byte) error {
	if err := oci.VerifyBytes(b, d); err != nil {
		return fmt.Errorf("store: %w", BadContent(err))
	}
	if _, err := c.statDurable(ctx, d); err == nil {
		return nil // content-addressed: already there means identical
	} else if down := c.storeDown(err); down != nil {
		return fmt.Errorf("store %s: %w", d, down)
	}
	f, err := c.store.TempFile()
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	if err == nil {
		err = c.store.Put(ctx, f, d, int64(len(b)))
	}
	if err != nil {
		os.Remove(f.Name())
		if down := c.storeDown(err); down != nil {
			err = down
		}
		return fmt.Errorf("store %s: %w", d, err)
	}
	return nil
}

// ErrStoreUnavailable: the store holding the content did not answer (a
// shared store that is down), so the cache can neither serve nor keep
// content. A miss is refused with it rather than fetched: what was
// fetched could not be kept, and every replica would fetch it again.
var ErrStoreUnavailable = errors.New("the content store is unavailable")

// storeDown wraps err in ErrStoreUnavailable when the store says it did
// not answer (cache/tier's UnavailableError), and returns nil otherwise.
// It also marks the store down for storeDownFor, so that misses meanwhile
// are refused before the upstream is asked for what could not be kept.
func (c *Cache) storeDown(err error) error {
	var u interface{ StoreUnavailable() bool }
	if !errors.As(err, &u) || !u.StoreUnavailable() {
		return nil
	}
	c.storeDownAt.Store(c.opts.Now().UnixNano())
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// storeDownFor is how long a store that did not answer is taken for down:
// one miss per period tries it again (and the upstream, if it answers).
const storeDownFor = 5 * time.Second

// storeAnswering returns ErrStoreUnavailable while the store is taken for
// down.
func (c *Cache) storeAnswering() error {
	at := c.storeDownAt.Load()
	if at != 0 && c.opts.Now().Sub(time.Unix(0, at)) < storeDownFor {
		return fmt.Errorf("%w: it did not answer %s ago", ErrStoreUnavailable, c.opts.Now().Sub(time.Unix(0, at)).Round(time.Millisecond))
	}
	return nil
}

// statDurable is Stat of the copy that outlives this replica: with a
// tiered store, the shared tier's. What is pinned and acknowledged (a
// pushed manifest, a mount, an import) must be there, not only in a local
// copy the bucket's eviction or another replica's delete left behind.
func (c *Cache) statDurable(ctx context.Context, d digest.Digest) (int64, error) {
	if ds, ok := c.store.(sharedStatter); ok {
		return ds.StatShared(ctx, d)
	}
	return c.store.Stat(ctx, d)
}

// sharedStatter is a store with a shared tier under a local one
// (cache/tier).
type sharedStatter interface {
	StatShared(context.Context, digest.Digest) (int64, error)
}

// BadContent classes a mismatch of oci's verifiers as the sender's fault
// (a client's push, an archive's content): ErrDigestInvalid or
// ErrSizeInvalid, a 400.
func BadContent(err error) error { return oci.WrapMismatch(err, ErrDigestInvalid, ErrSizeInvalid) }
