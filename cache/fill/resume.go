package fill

// Reading an upstream body that may stall or break off, and resuming it:
// one helper for the fill in one stream (stream.go) and for each segment
// (segment.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// bodyBuf is the buffer each reader of an upstream body (the stream, each
// segment's worker) holds, and the segmented fill's verifier.
const bodyBuf = 128 << 10

// readBody hands body's bytes to put, chunk by chunk, until it ends. A
// read that yields nothing for StallTimeout cancels the body's request
// (cancel), and the body then ends with ErrStalled. readErr is how the
// body ended (nil at EOF), putErr put's failure, which ends the fill.
func (g *Group) readBody(body io.Reader, cancel context.CancelFunc, buf []byte, put func([]byte) error) (readErr, putErr error) {
	stall := time.AfterFunc(g.opts.StallTimeout, cancel)
	defer stall.Stop()
	for {
		n, err := body.Read(buf)
		// Decide the end before re-arming: a timer that fired cancelled
		// this read, and Reset would hide that from readEnd. Stopped, it
		// does not count the time put takes either.
		stalled := !stall.Stop()
		if n > 0 {
			if perr := put(buf[:n]); perr != nil {
				return nil, perr
			}
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

// retry is what a fill does when what (a body) broke off with readErr at
// offset: it spends one of the fill's resumes, which Options.Resumes
// bounds for the whole fill (its segments share them), and waits out
// backoff, doubled for the next time. nil means reopen; an error ends
// the fill.
func (g *Group) retry(ctx context.Context, f *fill, backoff *time.Duration, what string, offset int64, readErr error, log logrus.FieldLogger) error {
	spent := f.resumes.Add(1)
	if ctx.Err() != nil || spent > int64(g.opts.Resumes) {
		return fmt.Errorf("fill %s: %s broke at %d after %d resumes: %w", f.d, what, offset, spent-1, readErr)
	}
	log.WithError(readErr).WithField("offset", offset).Infof("%s broke; resuming it with a Range request", what)
	select {
	case <-time.After(*backoff):
	case <-ctx.Done():
		return fmt.Errorf("fill %s: %w", f.d, ctx.Err())
	}
	*backoff *= 2
	return nil
}

// writeError is a failed write to the temp file; a full disk is ErrNoSpace.
func (f *fill) writeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		err = fmt.Errorf("%w: %v", ErrNoSpace, err)
	}
	return fmt.Errorf("fill %s: write temp file: %w", f.d, err)
}
