package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// Chunks are the bytes of upload sessions in progress that the replicas
// share (cache/upload): one object per request body a session took,
//
//	<prefix>/uploads/<session>/<chunk>
//
// written as the body arrives, whatever its size, and deleted when the
// session ends. The session's state (which chunks count, in which order)
// is a record beside them (Records); a chunk no state names is a leftover.
type Chunks struct{ s *Store }

// Chunks returns the store's upload chunks.
func (s *Store) Chunks() Chunks { return Chunks{s} }

func (c Chunks) prefix() string {
	if c.s.opts.Prefix == "" {
		return "uploads/"
	}
	return c.s.opts.Prefix + "/uploads/"
}

// segment refuses a session or chunk name that is not one plain segment
// of printable ASCII: a client must not steer a key out of uploads/.
func segment(kind, name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 200 {
		return fmt.Errorf("s3: upload %s name %q: empty, . or .. or too long", kind, name)
	}
	for _, r := range name {
		if r < 0x21 || r > 0x7e || r == '/' {
			return fmt.Errorf("s3: upload %s name %q: not one segment of printable ASCII", kind, name)
		}
	}
	return nil
}

func (c Chunks) key(session, chunk string) (string, error) {
	if err := segment("session", session); err != nil {
		return "", err
	}
	if err := segment("chunk", chunk); err != nil {
		return "", err
	}
	return c.prefix() + session + "/" + chunk, nil
}

// Put streams r into the chunk's object and returns how many bytes it
// took. size is r's length if known, else -1: then the client buffers one
// part (Options.PartSize) at a time, so a request's memory is bounded by
// the part size whatever the body's length. Waits on the store are bounded
// as for content (store.go's upload): the transport bounds each answer,
// and a watchdog at twice Timeout cancels a body the store stops taking.
// The watchdog does not run while r itself is slow to give bytes (a slow
// client is not a stalled store). An object the store did not take whole
// is not visible: a failed multipart upload is aborted by the client.
func (c Chunks) Put(ctx context.Context, session, chunk string, r io.Reader, size int64) (int64, error) {
	key, err := c.key(session, chunk)
	if err != nil {
		return 0, err
	}
	w := watch(ctx, 2*c.s.opts.Timeout)
	defer w.stop()
	w.alive()
	body := &progressReader{r: r, w: w}
	info, err := c.s.client.PutObject(w.ctx, c.s.opts.Bucket, key, body, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: uint64(c.s.opts.PartSize),
		Progress: progressHook{w}, // minio reads it as the store takes bytes
	})
	if err != nil {
		if body.err != nil { // the body's own failure, not the store's
			return 0, body.err
		}
		return 0, fmt.Errorf("s3: upload chunk %s/%s: %w", session, chunk, w.explain(err))
	}
	if info.Size != body.n {
		return 0, fmt.Errorf("s3: upload chunk %s/%s: the store took %d bytes of %d", session, chunk, info.Size, body.n)
	}
	return info.Size, nil
}

// PartSize is the buffer PutBuffered streams a body of unknown length
// through: one part of a multipart upload (Options.PartSize).
func (c Chunks) PartSize() int64 { return c.s.opts.PartSize }

// PutBuffered is Put for a body of unknown length, staged one part at a
// time in buf, which the caller lends (len(buf) at least PartSize's 5 MiB
// minimum): the caller, not the client library, then decides how many
// such buffers exist and reuses them (cache/upload caps them across its
// sessions). A body that fits in buf is one PUT; a longer one is a
// multipart upload of len(buf) parts, aborted if it fails, so that a
// chunk the store did not take whole is not visible. Stalls are watched
// as in Put.
func (c Chunks) PutBuffered(ctx context.Context, session, chunk string, r io.Reader, buf []byte) (int64, error) {
	key, err := c.key(session, chunk)
	if err != nil {
		return 0, err
	}
	w := watch(ctx, 2*c.s.opts.Timeout)
	defer w.stop()
	body := &progressReader{r: r, w: w}
	n, err := c.putParts(w, key, body, buf)
	if err != nil {
		if body.err != nil { // the body's own failure, not the store's
			return 0, body.err
		}
		return 0, fmt.Errorf("s3: upload chunk %s/%s: %w", session, chunk, w.explain(err))
	}
	return n, nil
}

func (c Chunks) putParts(w *watchdog, key string, body *progressReader, buf []byte) (int64, error) {
	part := func(n int) io.Reader {
		return io.NewSectionReader(progressReaderAt{r: bytes.NewReader(buf[:n]), w: w}, 0, int64(n))
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	n, err := io.ReadFull(body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF { // the whole body fits in one part
		w.alive()
		single := opts
		single.PartSize = uint64(len(buf)) // one PUT, never the library's multipart of a smaller default part
		info, err := c.s.client.PutObject(w.ctx, c.s.opts.Bucket, key, part(n), int64(n), single)
		if err == nil && info.Size != int64(n) {
			err = fmt.Errorf("the store took %d bytes of %d", info.Size, n)
		}
		return int64(n), err
	}
	if err != nil {
		return 0, err
	}
	core := minio.Core{Client: c.s.client}
	w.alive()
	id, err := core.NewMultipartUpload(w.ctx, c.s.opts.Bucket, key, opts)
	if err != nil {
		return 0, err
	}
	var parts []minio.CompletePart
	total, last := int64(0), false
	for {
		if len(parts) == maxParts {
			err = fmt.Errorf("more than %d parts of %d bytes", maxParts, len(buf))
			break
		}
		w.alive()
		var p minio.ObjectPart
		if p, err = core.PutObjectPart(w.ctx, c.s.opts.Bucket, key, id, len(parts)+1, part(n), int64(n), minio.PutObjectPartOptions{}); err != nil {
			break
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		total += int64(n)
		if last {
			break
		}
		n, err = io.ReadFull(body, buf)
		if err == io.EOF {
			err = nil
			break
		}
		if err == io.ErrUnexpectedEOF { // a shorter last part
			err, last = nil, true
		} else if err != nil {
			break
		}
	}
	if err == nil {
		w.alive()
		_, err = core.CompleteMultipartUpload(w.ctx, c.s.opts.Bucket, key, id, parts, opts)
	}
	if err != nil {
		// The abort is not the client's to cancel, nor the watchdog's;
		// an upload it fails to abort, the next Open aborts.
		actx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), c.s.opts.Timeout)
		core.AbortMultipartUpload(actx, c.s.opts.Bucket, key, id)
		cancel()
		return 0, err
	}
	return total, nil
}

// maxParts is S3's cap on the parts of one multipart upload.
const maxParts = 10000

// progressReader is a chunk's body: the watchdog rests while the body's
// own source is read, and runs again once its bytes are the store's to
// take. It keeps the source's error, which the client library wraps.
type progressReader struct {
	r   io.Reader
	w   *watchdog
	n   int64
	err error
}

func (p *progressReader) Read(b []byte) (int, error) {
	p.w.idle()
	n, err := p.r.Read(b)
	p.w.alive()
	p.n += int64(n)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

// progressHook is minio's Progress reader: it is told of each piece of
// the upload the store took.
type progressHook struct{ w *watchdog }

func (h progressHook) Read(b []byte) (int, error) {
	h.w.alive()
	return len(b), nil
}

// Open reads a chunk whole. Each read waits at most Timeout for the store
// (a watchdog around it), so a store that freezes fails the read.
func (c Chunks) Open(ctx context.Context, session, chunk string) (io.ReadCloser, error) {
	key, err := c.key(session, chunk)
	if err != nil {
		return nil, err
	}
	w := watch(ctx, c.s.opts.Timeout)
	core := minio.Core{Client: c.s.client}
	w.alive()
	body, _, _, err := core.GetObject(w.ctx, c.s.opts.Bucket, key, minio.GetObjectOptions{})
	w.idle()
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("s3: read chunk %s/%s: %w", session, chunk, w.explain(err))
	}
	return &chunkReader{body: body, w: w, name: session + "/" + chunk}, nil
}

type chunkReader struct {
	body io.ReadCloser
	w    *watchdog
	name string
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.w.alive()
	n, err := r.body.Read(p)
	r.w.idle()
	if err != nil && err != io.EOF {
		err = fmt.Errorf("s3: read chunk %s: %w", r.name, r.w.explain(err))
	}
	return n, err
}

func (r *chunkReader) Close() error {
	err := r.body.Close()
	r.w.stop()
	return err
}

// Delete removes a chunk; a missing one is no error.
func (c Chunks) Delete(ctx context.Context, session, chunk string) error {
	key, err := c.key(session, chunk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.s.opts.Timeout)
	defer cancel()
	if err := c.s.client.RemoveObject(ctx, c.s.opts.Bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("s3: delete chunk %s/%s: %w", session, chunk, err)
	}
	return nil
}

// DeleteSession removes every chunk of session, those its state names
// and any a failed request left.
func (c Chunks) DeleteSession(ctx context.Context, session string) error {
	if err := segment("session", session); err != nil {
		return err
	}
	return c.list(ctx, session+"/", func(sess, chunk string) error {
		return c.Delete(ctx, sess, chunk)
	})
}

// Sessions calls fn once with each session that has chunks stored, in
// lexical order (a session's chunks are listed together).
func (c Chunks) Sessions(ctx context.Context, fn func(session string) error) error {
	last := ""
	return c.list(ctx, "", func(session, _ string) error {
		if session == last {
			return nil
		}
		last = session
		return fn(session)
	})
}

// list calls fn with each chunk under prefix (relative to uploads/),
// skipping keys Put would not have written.
func (c Chunks) list(ctx context.Context, prefix string, fn func(session, chunk string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if fn stops it
	base := c.prefix()
	for obj := range c.s.client.ListObjectsIter(ctx, c.s.opts.Bucket, minio.ListObjectsOptions{Prefix: base + prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3: list upload chunks: %w", obj.Err)
		}
		rest, _ := strings.CutPrefix(obj.Key, base)
		session, chunk, ok := strings.Cut(rest, "/")
		if !ok || segment("session", session) != nil || segment("chunk", chunk) != nil {
			continue
		}
		if err := fn(session, chunk); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// isChunkKey reports whether key is a chunk's, for the sweep of abandoned
// multipart uploads.
func (c Chunks) isChunkKey(key string) bool {
	rest, ok := strings.CutPrefix(key, c.prefix())
	session, chunk, cut := strings.Cut(rest, "/")
	return ok && cut && segment("session", session) == nil && segment("chunk", chunk) == nil
}

// Compose makes d's content object of a session's chunks, in order, by
// copies within the store: no byte passes through wharf again, so a
// pushed blob is not uploaded twice (Store.Put then finds it stored).
// The caller has checked that the chunks hash to d. S3 copies a single
// chunk whole, and several as parts, each but the last at least 5 MiB:
// smaller ones are refused, and the caller uploads the blob instead. A
// failed copy leaves nothing visible (an unfinished multipart upload
// under d's key, aborted by a later Open).
func (c Chunks) Compose(ctx context.Context, session string, chunks []string, d digest.Digest) error {
	if err := valid(d); err != nil {
		return err
	}
	srcs := make([]minio.CopySrcOptions, len(chunks))
	for i, ch := range chunks {
		key, err := c.key(session, ch)
		if err != nil {
			return err
		}
		srcs[i] = minio.CopySrcOptions{Bucket: c.s.opts.Bucket, Object: key}
	}
	dst := minio.CopyDestOptions{Bucket: c.s.opts.Bucket, Object: c.s.key(d)}
	if _, err := c.s.client.ComposeObject(ctx, dst, srcs...); err != nil {
		return fmt.Errorf("s3: compose %s of upload %s: %w", d, session, err)
	}
	return nil
}
