package archive

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
)

// sink receives the files of an export: an OCI layout directory, or a tar
// stream (a file or stdout). Files are streamed in; each name is written
// once, so content shared by several images is carried once.
type sink interface {
	// put writes name, size bytes read from r.
	put(name string, size int64, r io.Reader) error
	// has reports whether name was written already.
	has(name string) bool
	// close finishes the archive (a tar's trailer) and flushes it.
	close() error
}

// dirSink writes files under a directory, each to a temp name first and
// renamed once complete, so an interrupted export leaves no file that
// looks whole and is not.
type dirSink struct {
	root    string
	written map[string]bool
}

func newDirSink(root string) (*dirSink, error) {
	if entries, err := os.ReadDir(root); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("output directory %s is not empty", root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return &dirSink{root: root, written: map[string]bool{}}, nil
}

func (s *dirSink) has(name string) bool { return s.written[name] }

func (s *dirSink) put(name string, size int64, r io.Reader) error {
	dst := filepath.Join(s.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: wrote %d bytes, want %d", name, n, size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("output %s: %w", name, err)
	}
	s.written[name] = true
	return nil
}

func (s *dirSink) close() error { return nil }

// tarSink writes a tar stream. Entries get a fixed time and owner, so the
// same export gives the same bytes.
type tarSink struct {
	bw      *bufio.Writer
	tw      *tar.Writer
	closer  io.Closer // the file, or nil for stdout
	written map[string]bool
	dirs    map[string]bool
}

func newTarSink(w io.Writer, closer io.Closer) *tarSink {
	bw := bufio.NewWriterSize(w, 1<<20)
	return &tarSink{bw: bw, tw: tar.NewWriter(bw), closer: closer, written: map[string]bool{}, dirs: map[string]bool{}}
}

var epoch = time.Unix(0, 0).UTC()

func (s *tarSink) has(name string) bool { return s.written[name] }

func (s *tarSink) put(name string, size int64, r io.Reader) error {
	// docker load before version 25 extracts with directories declared;
	// declaring each one once keeps every extractor happy.
	if err := s.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatPAX}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("output %s: %w", name, err)
	}
	if n, err := io.Copy(s.tw, r); err != nil {
		return fmt.Errorf("output %s: %w", name, err)
	} else if n != size {
		return fmt.Errorf("output %s: wrote %d bytes, want %d", name, n, size)
	}
	s.written[name] = true
	return nil
}

func (s *tarSink) mkdirs(dir string) error {
	if dir == "." || dir == "/" || s.dirs[dir] {
		return nil
	}
	if err := s.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	s.dirs[dir] = true
	hdr := &tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	return nil
}

func (s *tarSink) close() error {
	err := s.tw.Close()
	if ferr := s.bw.Flush(); err == nil {
		err = ferr
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// errCorrupt: stored content no longer hashes to its digest.
var errCorrupt = errors.New("stored content is corrupt (run wharf verify --repair, then warm it again)")

// blobPath is where an OCI layout (and docker save since 25) keeps d.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}
