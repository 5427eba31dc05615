package upload

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/wharf-mirror/wharf/cache/index"
)

// appendChunk writes c at the end of the session's file and records it.
// It returns the open file and the running sha256 (nil when unknown, then
// the file is hashed again at the end).
func (s *Sessions) appendChunk(id string, rec index.UploadRecord, c Chunk) (*os.File, hash.Hash, index.UploadRecord, error) {
	c, err := checkChunk(rec.Size, c)
	if err != nil {
		return nil, nil, rec, err
	}
	f, err := os.OpenFile(s.path(id), os.O_RDWR, 0)
	if err != nil {
		s.opts.Metrics.StoreError("read")
		return nil, nil, rec, fmt.Errorf("upload %s: %w", id, err)
	}
	fail := func(err error) (*os.File, hash.Hash, index.UploadRecord, error) {
		f.Close()
		return nil, nil, rec, err
	}
	if err := align(f, &rec); err != nil {
		return fail(err)
	}
	h, known := resumeHash(rec)
	if _, err := f.Seek(rec.Size, io.SeekStart); err != nil {
		return fail(fmt.Errorf("upload %s: %w", id, err))
	}
	n := int64(0)
	if c.Body != nil && c.Length != 0 {
		src := c.Body
		if c.Length > 0 {
			src = io.LimitReader(c.Body, c.Length)
		}
		n, err = io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, copyBuffer))
		if err == nil && c.Length >= 0 && n != c.Length {
			err = fmt.Errorf("body ended after %d of %d bytes: %w", n, c.Length, ErrSizeInvalid)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("body cut short: %w: %w", ErrSizeInvalid, err)
		}
		if err != nil {
			// Keep whole chunks only: the client resumes from rec.Size.
			// The session was in use until now, however long the body
			// streamed: its expiry counts from here.
			f.Truncate(rec.Size)
			s.touch(id, rec)
			return fail(err)
		}
	}
	if n > 0 {
		if err := f.Sync(); err != nil {
			s.opts.Metrics.StoreError("write")
			return fail(fmt.Errorf("upload %s: sync: %w", id, err))
		}
		rec.Size += n
		rec.HashState = nil
		if known {
			rec.HashState = hashState(h)
		}
		rec.Updated = s.opts.Now()
		if err := s.opts.Records.PutUpload(id, rec); err != nil {
			s.opts.Metrics.StoreError("index")
			f.Truncate(rec.Size - n)
			return fail(err)
		}
	}
	if !known {
		h = nil
	}
	return f, h, rec, nil
}

// touch stamps a session of this node as in use now.
func (s *Sessions) touch(id string, rec index.UploadRecord) {
	rec.Updated = s.opts.Now()
	if err := s.opts.Records.PutUpload(id, rec); err != nil {
		s.log.WithError(err).WithField("upload", id).Debug("stamp an upload in use")
	}
}

// checkChunk checks c against a session holding size bytes (the
// Content-Range rules) and returns it with its Length known when the
// range says it.
func checkChunk(size int64, c Chunk) (Chunk, error) {
	if c.Start >= 0 && c.Start != size {
		return c, &RangeError{Size: size}
	}
	if c.Start >= 0 && c.End >= 0 {
		// End-Start+1 < 0 is an End so large that the length overflows
		// (bytes 0-9223372036854775807): it would read as "unknown".
		if c.End < c.Start-1 || c.End-c.Start+1 < 0 || (c.Length >= 0 && c.End-c.Start+1 != c.Length) {
			return c, fmt.Errorf("Content-Range %d-%d for %d bytes: %w", c.Start, c.End, c.Length, ErrSizeInvalid)
		}
		if c.Length < 0 {
			c.Length = c.End - c.Start + 1
		}
	}
	return c, nil
}

// align makes the file agree with the record after a crash: bytes past
// rec.Size were never acknowledged and are cut off; a file shorter than
// the record (lost by the filesystem) shrinks the record, and the hash is
// recomputed at the end.
func align(f *os.File, rec *index.UploadRecord) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	switch {
	case fi.Size() > rec.Size:
		return f.Truncate(rec.Size)
	case fi.Size() < rec.Size:
		rec.Size, rec.HashState = fi.Size(), nil
	}
	return nil
}
