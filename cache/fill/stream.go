package fill

// One stream: the fill's copy of an upstream body into its temp file,
// hashing as it goes and resuming a broken body from its last byte.

import (
	"context"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/oci"
)

// copyVerified copies the upstream body (first's, then f.open's) into the
// temp file, resuming broken bodies from the last byte written, and checks
// size and digest at the end.
func (g *Group) copyVerified(f *fill, first *opened, log logrus.FieldLogger) error {
	var v *oci.Verifier // made with the file, once the size is known
	buf := make([]byte, bodyBuf)
	put := func(p []byte) error { return g.put(f, v, p) }
	backoff := g.opts.ResumeBackoff
	var upTo int64
	for {
		offset := f.written()
		var body io.ReadCloser
		var size int64
		var cancel context.CancelFunc
		if first != nil {
			body, size, cancel, upTo = first.body, first.size, first.cancel, first.upTo
			first = nil
		} else {
			var readCtx context.Context
			var err error
			readCtx, cancel = context.WithCancel(g.ctx)
			if body, size, err = f.open(readCtx, offset); err != nil {
				cancel()
				return fmt.Errorf("fill %s: open upstream at %d: %w", f.d, offset, err)
			}
		}
		if !f.hasFile() {
			file, err := g.opts.Sink.TempFile()
			if err != nil {
				body.Close()
				cancel()
				return err
			}
			f.start(file, size)
			if v, err = oci.NewVerifier(f.d, size); err != nil {
				body.Close()
				cancel()
				return fmt.Errorf("fill %s: %w", f.d, err)
			}
		} else if size >= 0 && f.size >= 0 && size != f.size {
			body.Close()
			cancel()
			return fmt.Errorf("fill %s: upstream size changed from %d to %d: %w", f.d, f.size, size, ErrSizeMismatch)
		}
		readErr, writeErr := g.readBody(body, cancel, buf, put)
		body.Close()
		cancel()
		if writeErr != nil {
			return writeErr
		}
		if readErr == nil && upTo > 0 && f.size < 0 && f.written() == upTo {
			upTo = 0 // the first range was whole: the rest in one stream, no resume
			continue
		}
		if readErr == nil {
			break
		}
		if err := g.retry(g.ctx, f, &backoff, "upstream body", f.written(), readErr, log); err != nil {
			return err
		}
	}
	if err := v.Verify(); err != nil {
		return fmt.Errorf("fill: upstream sent %w", upstreamMismatch(err))
	}
	return nil
}

// upstreamMismatch classes a mismatch as the upstream's fault: the fill's
// own sentinels, which proxy answers 502 and counts as digest_mismatch.
func upstreamMismatch(err error) error {
	return oci.WrapMismatch(err, ErrDigestMismatch, ErrSizeMismatch)
}

// put moves a chunk of the stream to the verifier and the temp file,
// publishing it to followers as soon as it is written.
func (g *Group) put(f *fill, v *oci.Verifier, p []byte) error {
	// The verifier first: bytes past the announced size fail before the
	// file, and so followers, see them.
	if _, err := v.Write(p); err != nil {
		return fmt.Errorf("fill: upstream sent %w", upstreamMismatch(err))
	}
	if f.size < 0 && g.opts.Keep != nil && !g.opts.Keep(f.written()+int64(len(p))) {
		return fmt.Errorf("fill %s: no size announced and more than %d bytes sent: %w", f.d, f.written(), ErrTooLarge)
	}
	if _, err := f.file.Write(p); err != nil {
		return f.writeError(err)
	}
	f.advance(int64(len(p)))
	return nil
}
