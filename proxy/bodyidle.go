package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/wharf-mirror/wharf/metrics"
)

// errBodyIdle: the client sent no byte of its request body for the idle
// timeout. The connection is closed; what an upload session acknowledged
// before stays, so the client can resume.
var errBodyIdle = errors.New("request body idle")

// idleBody bounds the silence within a request body. The server's own
// timeouts cover headers only (ReadTimeout would also cut a slow but
// steady multi-gigabyte upload), so without this a client sending a byte
// every few seconds holds its connection, handler and upload session for
// ever. Each Read gets a fresh deadline of idle from now on the
// connection, so only a gap of idle between bytes ends the request, never
// its length. The deadline is lifted as soon as the body ends: the server
// reads the connection in the background while the handler works and
// answers (to notice a client leaving), and a deadline left behind would
// cancel a long PUT's finishing, or a download, as if the client had gone.
// Requests without a body (GET, HEAD) never get a deadline.
type idleBody struct {
	io.ReadCloser
	w       http.ResponseWriter
	rc      *http.ResponseController
	idle    time.Duration
	metrics *metrics.Metrics
}

func (b *idleBody) Read(p []byte) (int, error) {
	// A writer that cannot set deadlines (a test's recorder) reads as
	// before.
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Left expired, so the server's attempt to drain the rest of the
		// body fails at once and it closes the connection; saying so
		// makes sure.
		b.w.Header().Set("Connection", "close")
		b.metrics.LimitHit("body_idle")
		return n, fmt.Errorf("%w: no byte for %s: %w", errBodyIdle, b.idle, err)
	case err != nil:
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// limitBodyIdle wraps r's body, if it has one, in an idleBody.
func (s *server) limitBodyIdle(w http.ResponseWriter, r *http.Request) {
	if s.opts.BodyIdleTimeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &idleBody{ReadCloser: r.Body, w: w, rc: http.NewResponseController(w),
		idle: s.opts.BodyIdleTimeout, metrics: s.opts.Metrics}
}
