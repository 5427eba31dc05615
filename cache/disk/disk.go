package disk

import (
	"errors"
	"fmt"

	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned when no verified file exists for a digest.
var ErrNotFound = errors.New("disk: not found")

// ErrDigestMismatch is returned when written bytes do not hash to the
// expected digest.
var ErrDigestMismatch = errors.New("disk: digest mismatch")

// Store is a content-addressed directory of verified files.
type Store struct {
	root string
}

// Open prepares root (creating blobs/ and tmp/) and sweeps leftovers of an
// earlier run from tmp/. It returns how many temp files it removed.
func Open(root string) (*Store, int, error) {
	s := &Store{root: root}
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

// Path is where the verified file for d lives (whether or not it exists).
// d must be a validated digest: its parts become path components.
func (s *Store) Path(d digest.Digest) string {
	enc := d.Encoded()
	return filepath.Join(s.blobDir(), d.Algorithm().String(), enc[:2], enc)
}

// Open opens the verified file for d.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	f, err := os.Open(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: open %s: %w", d, err)
	}
	return f, nil
}

// Stat returns the size of the verified file for d.
func (s *Store) Stat(d digest.Digest) (int64, error) {
	fi, err := os.Stat(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return 0, fmt.Errorf("disk: stat %s: %w", d, err)
	}
	return fi.Size(), nil
}

// TempFile creates an empty file in tmp/ for content being written.
func (s *Store) TempFile() (*os.File, error) {
	f, err := os.CreateTemp(s.tmpDir(), "fill-*")
	if err != nil {
		return nil, fmt.Errorf("disk: create temp file: %w", err)
	}
	return f, nil
}

// Commit makes the fully written temp file f visible as the content of d: it
// fsyncs f, renames it into blobs/ and fsyncs the directory so the rename
// survives a crash. The caller must already have checked the digest. f stays
// open (readers may still hold it); the caller closes it.
func (s *Store) Commit(f *os.File, d digest.Digest) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk: sync %s: %w", d, err)
	}
	dst := s.Path(d)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("disk: create %s: %w", dir, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("disk: rename %s into place: %w", d, err)
	}
	return syncDir(dir)
}

// Write stores small content (a manifest) given as bytes, verifying that it
// hashes to d first.
func (s *Store) Write(d digest.Digest, b []byte) error {
	if d.Algorithm().FromBytes(b) != d {
		return fmt.Errorf("%w: expected %s", ErrDigestMismatch, d)
	}
	if _, err := s.Stat(d); err == nil {
		return nil // content-addressed: already there means identical
	}
	f, err := s.TempFile()
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("disk: write %s: %w", d, err)
	}
	if err := s.Commit(f, d); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// Remove deletes the verified file for d; a missing file is not an error.
func (s *Store) Remove(d digest.Digest) error {
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk: remove %s: %w", d, err)
	}
	return nil
}

// Discard removes a temp file that will not be committed.
func (s *Store) Discard(f *os.File) {
	os.Remove(f.Name())
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
// are not valid digests are skipped.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	return filepath.WalkDir(s.blobDir(), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(s.blobDir(), path)
		alg := filepath.Dir(filepath.Dir(rel))
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), e.Name())
		if d.Validate() != nil {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		return fn(d, fi.Size())
	})
}
