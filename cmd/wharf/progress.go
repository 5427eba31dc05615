package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"
)

// What the store commands draw on a terminal while they work: a bar
// (verify) or a status line (warm). Both stay silent when stderr is not a
// terminal, so a log file gets the summary lines only.

// human writes a byte count in binary units: "1.5 KiB", "312 MiB".
func human(n int64) string { return humanize.IBytes(uint64(max(0, n))) }

// progress draws a bar on a terminal and stays silent otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd())) // not /dev/null, which is a character device too
	}
	return p
}

func (p *progress) update(done, total int64) {
	if !p.tty || time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s / %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, human(done), human(total))
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// statusLine is warm.Status on a terminal: it redraws one line, at most
// ten times a second.
type statusLine struct {
	p    *progress
	mu   sync.Mutex // Show is called from the fetching goroutines
	last time.Time
}

func newStatusLine(w io.Writer) *statusLine {
	return &statusLine{p: newProgress(w)}
}

func (s *statusLine) Show(format string, args ...any) {
	if !s.p.tty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last) < 100*time.Millisecond {
		return
	}
	s.last = time.Now()
	fmt.Fprintf(s.p.w, "\r\033[K"+format, args...)
}

func (s *statusLine) Clear() {
	if s.p.tty {
		fmt.Fprint(s.p.w, "\r\033[K")
	}
}
