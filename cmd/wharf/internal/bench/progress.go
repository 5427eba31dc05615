package bench

import (
	"fmt"
	"io"
	"time"
)

// startProgress rewrites a status line on w twice a second until the
// returned function is called, which erases it. With a nil w it does
// nothing: the line is for terminals, and the caller decides what is one.
func startProgress(w io.Writer, op string, start time.Time, ctr *counters) func() {
	if w == nil {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var lastBytes int64
		last := start
		for {
			select {
			case <-stop:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				b := ctr.bytes.Load()
				rate := float64(b-lastBytes) / now.Sub(last).Seconds()
				lastBytes, last = b, now
				el := now.Sub(start).Seconds()
				ops := ctr.ops.Load()
				fmt.Fprintf(w, "\r\033[K%6.1fs  %ss %d (%.1f/s)  %s/s  requests %d  failed %d",
					el, op, ops, float64(ops)/el, FormatBytes(rate), ctr.requests.Load(), ctr.failed.Load())
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
