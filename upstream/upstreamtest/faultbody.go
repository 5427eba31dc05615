package upstreamtest

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// copyFaulty copies body to w, applying ft's stall, corruption,
// truncation and pacing, adding the bytes written to sent if not nil.
func copyFaulty(w http.ResponseWriter, r *http.Request, body io.Reader, ft Fault, sent *atomic.Int64) {
	rc := http.NewResponseController(w)
	chunk := int64(32 << 10)
	if ft.BytesPerSec > 0 {
		chunk = min(max(ft.BytesPerSec/20, 1), chunk) // about 20 writes a second
	}
	buf := make([]byte, chunk)
	start := time.Now()
	var written int64
	stalled := ft.Stall <= 0
	for {
		n := chunk
		if ft.TruncateAfter > 0 {
			if written >= ft.TruncateAfter {
				_ = rc.Flush()
				panic(http.ErrAbortHandler)
			}
			n = min(n, ft.TruncateAfter-written)
		}
		if !stalled {
			if written >= ft.StallAfter {
				_ = rc.Flush()
				if !sleep(r.Context(), ft.Stall) {
					return
				}
				stalled = true
			} else {
				n = min(n, ft.StallAfter-written)
			}
		}
		m, err := body.Read(buf[:n])
		if m > 0 {
			if ft.Corrupt && written == 0 {
				buf[0] ^= 0xff
			}
			wn, werr := w.Write(buf[:m])
			if sent != nil {
				sent.Add(int64(wn))
			}
			if werr != nil {
				return
			}
			written += int64(m)
			if ft.BytesPerSec > 0 {
				_ = rc.Flush()
				due := start.Add(time.Duration(float64(written) / float64(ft.BytesPerSec) * float64(time.Second)))
				if !sleep(r.Context(), time.Until(due)) {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
