package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// Content is stored content open for reading: the same type as
// cache.Content, spelled here so that this package need not import cache.
type Content = interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// Open HEADs d's object and returns a reader that fetches nothing until
// read: a Range request that http.ServeContent answers by seeking reads
// only the bytes it sends.
func (s *Store) Open(ctx context.Context, d digest.Digest) (Content, error) {
	info, err := s.head(ctx, d)
	if err != nil {
		return nil, err
	}
	return &object{s: s, d: d, info: fileInfo{name: d.Encoded(), size: info.Size, mod: info.LastModified}}, nil
}

// object reads an object by ranged GETs. Seek only moves the offset;
// Read continues the GET under way if it stands at the offset, and starts
// one from the offset to the end otherwise. Reading on to the end costs
// one GET; a seek costs a new one (the old connection is dropped rather
// than drained). Like an *os.File it is for one goroutine at a time.
type object struct {
	s    *Store
	d    digest.Digest
	info fileInfo
	off  int64 // where the next Read reads

	body    io.ReadCloser // the GET under way, at bodyOff; nil if none
	bodyOff int64
	w       *watchdog // cancels body's GET if one read of it stalls
	closed  bool
}

func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, fmt.Errorf("s3: read %s: %w", o.d, os.ErrClosed)
	}
	if o.off >= o.info.size {
		return 0, io.EOF
	}
	if o.body != nil && o.bodyOff != o.off {
		o.drop()
	}
	if o.body == nil {
		if err := o.get(); err != nil {
			return 0, err
		}
	}
	if left := o.info.size - o.off; int64(len(p)) > left {
		p = p[:left]
	}
	o.w.alive()
	n, err := o.body.Read(p)
	o.w.idle()
	o.off += int64(n)
	o.bodyOff += int64(n)
	switch {
	case err == io.EOF && o.off < o.info.size:
		err = fmt.Errorf("s3: read %s: the store ended it at byte %d of %d: %w", o.d, o.off, o.info.size, io.ErrUnexpectedEOF)
	case err == io.EOF:
		err = nil // the next Read says EOF, from the size alone
	case err != nil:
		err = fmt.Errorf("s3: read %s at byte %d: %w", o.d, o.off, o.w.explain(err))
	}
	if err != nil {
		o.drop()
	}
	return n, err
}

// get starts a GET from the offset to the end. It runs under a context
// of its own, not the caller's of Open (a reader outlives that call):
// Close ends it, and the watchdog ends it if the store stops sending.
func (o *object) get() error {
	w := watch(context.Background(), o.s.opts.Timeout)
	var opts minio.GetObjectOptions
	if o.off > 0 {
		if err := opts.SetRange(o.off, 0); err != nil {
			w.stop()
			return fmt.Errorf("s3: read %s: %w", o.d, err)
		}
	}
	core := minio.Core{Client: o.s.client}
	body, _, _, err := core.GetObject(w.ctx, o.s.opts.Bucket, o.s.key(o.d), opts)
	if err != nil {
		w.stop()
		return notFound(o.d, "read", err) // deleted since Open: fs.ErrNotExist
	}
	o.body, o.bodyOff, o.w = body, o.off, w
	return nil
}

// drop ends the GET under way, if any.
func (o *object) drop() {
	if o.body != nil {
		o.body.Close()
		o.w.stop()
		o.body, o.w = nil, nil
	}
}

// Seek moves the offset; nothing is fetched until the next Read.
func (o *object) Seek(offset int64, whence int) (int64, error) {
	if o.closed {
		return 0, fmt.Errorf("s3: seek %s: %w", o.d, os.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.info.size
	default:
		return 0, fmt.Errorf("s3: seek %s: whence %d: %w", o.d, whence, errors.ErrUnsupported)
	}
	if offset < 0 {
		return 0, fmt.Errorf("s3: seek %s: negative offset %d", o.d, offset)
	}
	o.off = offset
	return offset, nil
}

func (o *object) Close() error {
	o.drop()
	o.closed = true
	return nil
}

// Stat gives the size and modification time the HEAD at Open saw.
func (o *object) Stat() (fs.FileInfo, error) { return o.info, nil }

// fileInfo describes an object as fs.FileInfo: read-only, never a
// directory.
type fileInfo struct {
	name string
	size int64
	mod  time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return fi.mod }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }
