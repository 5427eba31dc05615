package fill

// One stream: the fill's copy of an upstream body into its temp file,
// hashing as it goes and resuming a broken body from its last byte.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/oci"
)

// copyVerified copies the upstream body (first's, then f.open's) into the
// temp file, resuming broken bodies from the last byte written, and checks
// size and digest at the end.
func (g *Group) copyVerified(f *fill, first *opened, log logrus.FieldLogger) error {
	var v *oci.Verifier // made with the file, once the size is known
	backoff := g.opts.ResumeBackoff
	var upTo int64
	for attempt := 0; ; attempt++ {
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
		readErr, writeErr := g.copy(f, v, body, cancel)
		body.Close()
		cancel()
		if writeErr != nil {
			return writeErr
		}
		if readErr == nil && upTo > 0 && f.size < 0 && f.written() == upTo {
			upTo, attempt = 0, attempt-1 // the first range was whole: the rest in one stream, no resume
			continue
		}
		if readErr == nil {
			break
		}
		if g.ctx.Err() != nil || attempt >= g.opts.Resumes {
			return fmt.Errorf("fill %s: upstream body broke at %d after %d resumes: %w", f.d, f.written(), attempt, readErr)
		}
		log.WithError(readErr).WithField("offset", f.written()).Info("upstream body broke; resuming with a Range request")
		select {
		case <-time.After(backoff):
		case <-g.ctx.Done():
			return fmt.Errorf("fill %s: %w", f.d, g.ctx.Err())
		}
		backoff *= 2
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

// copy moves bytes from body to the verifier and the temp file, publishing each
// chunk to followers as soon as it is written. A read that yields nothing for
// StallTimeout cancels the body's context so the fill can resume.
func (g *Group) copy(f *fill, v *oci.Verifier, body io.Reader, cancel context.CancelFunc) (readErr, writeErr error) {
	buf := make([]byte, 128<<10)
	stall := time.AfterFunc(g.opts.StallTimeout, cancel)
	defer stall.Stop()
	for {
		n, err := body.Read(buf)
		// Decide the end before re-arming: a timer that fired cancelled
		// this read, and Reset would hide that from readEnd.
		stalled := !stall.Stop()
		if n > 0 {
			// The verifier first: bytes past the announced size fail
			// before the file, and so followers, see them.
			if _, verr := v.Write(buf[:n]); verr != nil {
				return nil, fmt.Errorf("fill: upstream sent %w", upstreamMismatch(verr))
			}
			if f.size < 0 && g.opts.Keep != nil && !g.opts.Keep(f.written()+int64(n)) {
				return nil, fmt.Errorf("fill %s: no size announced and more than %d bytes sent: %w", f.d, f.written(), ErrTooLarge)
			}
			if _, werr := f.file.Write(buf[:n]); werr != nil {
				return nil, f.writeError(werr)
			}
			f.advance(int64(n))
		}
		if err != nil || stalled {
			return readEnd(err, stalled), nil
		}
		stall.Reset(g.opts.StallTimeout)
	}
}

// readEnd is what a body's read error means to a copy: nil at EOF, the
// error otherwise, marked ErrStalled when the stall timer fired (it
// cancelled the read), even if that read still returned bytes.
func readEnd(err error, stalled bool) error {
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case stalled && err == nil:
		return fmt.Errorf("%w: %v", ErrStalled, context.Canceled)
	case stalled:
		return fmt.Errorf("%w: %v", ErrStalled, err)
	}
	return err
}

// writeError is a failed write to the temp file; a full disk is ErrNoSpace.
func (f *fill) writeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		err = fmt.Errorf("%w: %v", ErrNoSpace, err)
	}
	return fmt.Errorf("fill %s: write temp file: %w", f.d, err)
}
