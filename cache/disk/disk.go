package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// Content is stored content open for reading: the same type as
// cache.Content, spelled here so that this package need not import cache.
// The value is always an *os.File.
type Content = interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// Store is a content-addressed directory of verified files. It implements
// cache.Store.
type Store struct {
	root    string
	syncDir func(dir string) error // a field so a test can see it called
}

// Open prepares root (creating blobs/ and tmp/) and sweeps leftovers of an
// earlier run from tmp/. It returns how many temp files it removed.
func Open(root string) (*Store, int, error) {
	s := &Store{root: root, syncDir: syncDir}
	for _, dir := range []string{s.blobDir(), s.tmpDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, 0, fmt.Errorf("disk: create %s: %w", dir, err)
		}
	}
	swept, err := s.sweep()
	if err != nil {
		return nil, 0, err
	}
	return s, swept, nil
}

func (s *Store) blobDir() string { return filepath.Join(s.root, "blobs") }
func (s *Store) tmpDir() string  { return filepath.Join(s.root, "tmp") }

// path is where the verified file for d lives (whether or not it exists).
// d must be a validated digest: its parts become path components.
func (s *Store) path(d digest.Digest) string {
	enc := d.Encoded()
	return filepath.Join(s.blobDir(), d.Algorithm().String(), enc[:2], enc)
}

// valid refuses a digest that must not become a path: a malformed one
// could name a file outside blobs/.
func valid(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("disk: %q: %w", d, err)
	}
	return nil
}

// Open opens the verified file for d; the Content is an *os.File. Like
// Stat, it is on the hit path and trusts d to be valid: requests are
// checked where they enter (the router, import), and Put and Delete check
// again.
func (s *Store) Open(_ context.Context, d digest.Digest) (Content, error) {
	f, err := os.Open(s.path(d))
	if err != nil {
		return nil, notFound(d, "open", err)
	}
	return f, nil
}

// Stat returns the size of the verified file for d.
func (s *Store) Stat(_ context.Context, d digest.Digest) (int64, error) {
	fi, err := os.Stat(s.path(d))
	if err != nil {
		return 0, notFound(d, "stat", err)
	}
	return fi.Size(), nil
}

// notFound words an error of op on d; a missing file stays fs.ErrNotExist.
func notFound(d digest.Digest, op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk: %s: %w", d, fs.ErrNotExist)
	}
	return fmt.Errorf("disk: %s %s: %w", op, d, err)
}

// TempFile creates an empty file in tmp/, on the same filesystem as
// blobs/ so that Put is a rename.
func (s *Store) TempFile() (*os.File, error) {
	f, err := os.CreateTemp(s.tmpDir(), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("disk: create temp file: %w", err)
	}
	return f, nil
}

// Put makes the fully written file f visible as d: it checks f's size,
// fsyncs f, renames it into blobs/ and fsyncs the directory so the rename
// survives a crash. f may be any file under root (upload sessions stage
// under uploads/). It stays open; the caller closes it.
func (s *Store) Put(_ context.Context, f *os.File, d digest.Digest, size int64) error {
	if err := valid(d); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("disk: stat staged %s: %w", d, err)
	}
	if fi.Size() != size {
		return fmt.Errorf("disk: put %s: staged file holds %d bytes, not %d", d, fi.Size(), size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk: sync %s: %w", d, err)
	}
	dst := s.path(d)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("disk: create %s: %w", dir, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("disk: rename %s into place: %w", d, err)
	}
	return s.syncDir(dir)
}

// Delete removes the verified file for d; a missing file is not an error.
// Readers that have it open read on.
func (s *Store) Delete(_ context.Context, d digest.Digest) error {
	if err := valid(d); err != nil {
		return err
	}
	if err := os.Remove(s.path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk: remove %s: %w", d, err)
	}
	return nil
}

// sweep removes everything in tmp/: no fill survives a restart.
func (s *Store) sweep() (int, error) {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return 0, fmt.Errorf("disk: read %s: %w", s.tmpDir(), err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return 0, fmt.Errorf("disk: sweep temp: %w", err)
		}
	}
	return len(entries), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("disk: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("disk: sync dir %s: %w", dir, err)
	}
	return nil
}

// Walk calls fn for every verified file, in no particular order. Names that
// are not valid digests, or that sit in the wrong directory, are skipped.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	root := s.blobDir()
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fan := filepath.Dir(rel) // sha256/ab
		d := digest.NewDigestFromEncoded(digest.Algorithm(filepath.Dir(fan)), e.Name())
		if d.Validate() != nil || filepath.Base(fan) != e.Name()[:2] {
			return nil // not content, or not where Open looks for it
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		return fn(d, fi.Size())
	})
}
