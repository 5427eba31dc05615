package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// errStalled is the cause of a transfer cancelled for making no progress.
var errStalled = errors.New("transfer made no progress")

// watchdog cancels a transfer whose body stops moving. net/http bounds
// the wait for a response's headers (Options.Timeout), but not a body:
// a store that freezes mid-transfer would hang a download's read, or an
// upload's write into a full socket, until the caller gives up.
//
// A download arms the watchdog around each read of the response body; an
// upload restarts it each time the transport takes more of the request
// body, and lets it run in between.
type watchdog struct {
	limit  time.Duration
	timer  *time.Timer
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// watch returns a watchdog, stopped, whose context is a child of ctx that
// the watchdog cancels on a stall. The caller stops it when the transfer
// ends.
func watch(ctx context.Context, limit time.Duration) *watchdog {
	w := &watchdog{limit: limit}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	w.timer = time.AfterFunc(limit, func() {
		w.cancel(fmt.Errorf("%w for %s", errStalled, limit))
	})
	w.timer.Stop()
	return w
}

// alive (re)starts the clock; idle stops it.
func (w *watchdog) alive() { w.timer.Reset(w.limit) }
func (w *watchdog) idle()  { w.timer.Stop() }

// stop ends the watch and releases its context.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// explain returns the stall in place of the bare "context canceled" the
// transport reports when the watchdog cut a transfer short.
func (w *watchdog) explain(err error) error {
	cause := context.Cause(w.ctx)
	if err == nil || errors.Is(err, errStalled) || !errors.Is(cause, errStalled) {
		return err // no stall, or the transport reported the cause itself
	}
	return fmt.Errorf("%w (%w)", cause, err)
}

// progressReaderAt is an upload's body: each read the transport makes
// restarts the watchdog.
type progressReaderAt struct {
	r io.ReaderAt
	w *watchdog
}

func (p progressReaderAt) ReadAt(b []byte, off int64) (int, error) {
	p.w.alive()
	return p.r.ReadAt(b, off)
}
