package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/storetest"
)

// TestTableFitsAnObjectStore runs the table against a store built the way
// an object store is (objects copied up from local staging, read through
// a handle that is not an *os.File), so the table cannot lean on what only
// the disk store does.
func TestTableFitsAnObjectStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func(t *testing.T) cache.Store {
			s, err := openObjects(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// objects keeps each digest as a whole object, written in one step (as an
// object store's PUT is), apart from its local staging directory.
type objects struct{ staging, bucket string }

func openObjects(dir string) (*objects, error) {
	s := &objects{staging: filepath.Join(dir, "staging"), bucket: filepath.Join(dir, "bucket")}
	if err := os.RemoveAll(s.staging); err != nil { // leftovers of a crash
		return nil, err
	}
	for _, d := range []string{s.staging, s.bucket} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *objects) key(d digest.Digest) string {
	return filepath.Join(s.bucket, d.Algorithm().String()+"-"+d.Encoded())
}

func (s *objects) TempFile() (*os.File, error) { return os.CreateTemp(s.staging, "stage-*") }

func (s *objects) Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return fmt.Errorf("staged %s: not %d bytes (%v)", d, size, err)
	}
	up, err := os.CreateTemp(s.bucket, ".upload-*") // the upload in flight, invisible
	if err != nil {
		return err
	}
	defer os.Remove(up.Name())
	defer up.Close()
	if _, err := io.Copy(up, io.NewSectionReader(f, 0, size)); err != nil {
		return err
	}
	if err := os.Rename(up.Name(), s.key(d)); err != nil {
		return err
	}
	return os.Remove(f.Name())
}

// object is an open object: a handle of its own type, as a ranged GET's.
type object struct{ f *os.File }

func (o object) Read(p []byte) (int, error)                { return o.f.Read(p) }
func (o object) Seek(off int64, whence int) (int64, error) { return o.f.Seek(off, whence) }
func (o object) Close() error                              { return o.f.Close() }
func (o object) Stat() (fs.FileInfo, error)                { return o.f.Stat() }

func (s *objects) Open(_ context.Context, d digest.Digest) (cache.Content, error) {
	f, err := os.Open(s.key(d))
	if err != nil {
		return nil, err // an *fs.PathError wrapping fs.ErrNotExist when missing
	}
	return object{f}, nil
}

func (s *objects) Stat(_ context.Context, d digest.Digest) (int64, error) {
	fi, err := os.Stat(s.key(d))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *objects) Delete(_ context.Context, d digest.Digest) error {
	if err := os.Remove(s.key(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *objects) Walk(ctx context.Context, fn func(digest.Digest, int64) error) error {
	entries, err := os.ReadDir(s.bucket)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		alg, enc, ok := strings.Cut(e.Name(), "-")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if err := fn(digest.NewDigestFromEncoded(digest.Algorithm(alg), enc), fi.Size()); err != nil {
			return err
		}
	}
	return nil
}
