package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// source is an export to import, read by file name: a directory, or a tar
// file indexed once so that each member is then read in place (docker
// save puts manifest.json last, and an OCI layout's index.json may come
// anywhere, so a single pass in stream order would have to hold blobs
// before knowing what they are).
type source interface {
	// open returns the named file and its size; fs.ErrNotExist if absent.
	open(name string) (io.ReadCloser, int64, error)
	close() error
}

// cleanName refuses names that would leave the archive: a manifest.json
// is input, and must not make import read /etc/passwd.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q leaves the archive", name)
	}
	return c, nil
}

// openSource opens a directory or a tar file. Compressed tarballs are
// refused with a hint: they cannot be read in place.
func openSource(p string) (source, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return dirSource(p), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, 4)
	if n, _ := io.ReadFull(f, magic); n >= 2 && (bytes.HasPrefix(magic, []byte{0x1f, 0x8b}) || bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd})) {
		f.Close()
		return nil, fmt.Errorf("%s is compressed: decompress it first (gunzip / zstd -d), import reads a tar in place", p)
	}
	t, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}

type dirSource string

func (d dirSource) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(c)))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file", name)
	}
	return f, fi.Size(), nil
}

func (d dirSource) close() error { return nil }

// tarSource is a tar file with the offset of each member's data.
type tarSource struct {
	f       *os.File
	members map[string]tarMember
}

type tarMember struct {
	offset, size int64
	link         string // a symlink's or hard link's target, resolved on open
}

// indexTar reads every header once. tar.Reader seeks over data when its
// reader can seek, so this costs one header read per member, not a read
// of the whole file.
func indexTar(f *os.File) (*tarSource, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cr := &countingSeeker{f: f}
	tr := tar.NewReader(cr)
	t := &tarSource{f: f, members: map[string]tarMember{}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			t.members[name] = tarMember{offset: cr.pos, size: hdr.Size}
		case tar.TypeSymlink:
			t.members[name] = tarMember{link: path.Join(path.Dir(name), hdr.Linkname)}
		case tar.TypeLink:
			t.members[name] = tarMember{link: hdr.Linkname}
		}
	}
	if len(t.members) == 0 {
		return nil, errors.New("not a tar archive, or an empty one")
	}
	return t, nil
}

func (t *tarSource) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	for hops := 0; hops < 8; hops++ {
		m, ok := t.members[c]
		if !ok {
			return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
		}
		if m.link == "" {
			return io.NopCloser(io.NewSectionReader(t.f, m.offset, m.size)), m.size, nil
		}
		if c, err = cleanName(m.link); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("%s: too many links", name)
}

func (t *tarSource) close() error { return t.f.Close() }

// countingSeeker tracks the position tar.Reader has reached in f: after
// Next, it is where the member's data starts.
type countingSeeker struct {
	f   *os.File
	pos int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.pos += int64(n)
	return n, err
}

func (c *countingSeeker) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.f.Seek(offset, whence)
	if err == nil {
		c.pos = pos
	}
	return pos, err
}

// readSmall reads a metadata file whole (index.json, manifest.json, a
// manifest or an image config), refusing one over limit bytes.
func readSmall(s source, name string, limit int64) ([]byte, error) {
	rc, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %d allowed", name, size, limit)
	}
	return io.ReadAll(io.LimitReader(rc, limit))
}
