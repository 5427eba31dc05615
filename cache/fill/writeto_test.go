package fill_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/fill"
)

// spanWriter is an io.ReaderFrom, as an HTTP response over TCP is, that
// records how it was handed the bytes: sections of a file (what sendfile
// takes), other readers, or plain writes. got receives the total after
// each call.
type spanWriter struct {
	mu                   sync.Mutex
	buf                  bytes.Buffer
	files, other, writes int
	got                  chan int
}

func newSpanWriter() *spanWriter { return &spanWriter{got: make(chan int, 1<<12)} }

func (w *spanWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	n, _ := w.buf.Write(p)
	w.got <- w.buf.Len()
	return n, nil
}

func (w *spanWriter) ReadFrom(r io.Reader) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			w.files++
		} else {
			w.other++
		}
	} else {
		w.other++
	}
	n, err := io.Copy(struct{ io.Writer }{&w.buf}, r)
	w.got <- w.buf.Len()
	return n, err
}

// waitGot waits until w holds at least n bytes.
func (w *spanWriter) waitGot(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		select {
		case got := <-w.got:
			if got >= n {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the writer never got %d bytes", n)
		}
	}
}

// TestWriteToHandsOverFileSpans: io.Copy from a follower into a writer
// that takes files hands it sections of the temp file, never bytes read
// into wharf, and does so as they arrive: the first KiB reaches the writer
// while the upstream still holds the rest.
func TestWriteToHandsOverFileSpans(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	gate := make(chan struct{})
	fw, err := g.Join(d, (&source{blob: blob, gate: gate}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fw.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	w := newSpanWriter()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, fw.Reader(ctx, 0))
		done <- err
	}()
	w.waitGot(t, ctx, 1024)
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bytes.Equal(w.buf.Bytes(), blob) {
		t.Fatalf("the writer got %d bytes, not the blob's %d", w.buf.Len(), len(blob))
	}
	if w.files < 2 || w.other != 0 || w.writes != 0 {
		t.Errorf("handed %d file sections, %d other readers, %d writes; want 2 or more sections and nothing else", w.files, w.other, w.writes)
	}
}

// TestWriteToNeverFinishesAWrongBlob: handing over file sections keeps
// the last byte back until the digest is checked, so a corrupt blob ends
// with the fill's error and never reaches its length.
func TestWriteToNeverFinishesAWrongBlob(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	fw, err := g.Join(d, (&source{blob: blob, corrupt: true}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if _, err := fw.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := newSpanWriter()
	if _, err := io.Copy(w, fw.Reader(t.Context(), 0)); !errors.Is(err, fill.ErrDigestMismatch) {
		t.Fatalf("copy of a corrupt blob ended with %v, want ErrDigestMismatch", err)
	}
	if n := w.buf.Len(); n >= len(blob) {
		t.Errorf("the writer got %d bytes of a corrupt %d-byte blob, want fewer", n, len(blob))
	}
}

// TestRangeReaderEndsAtItsEnd: a range of bytes that arrived ends there,
// read or handed over, while the upstream still holds the rest.
func TestRangeReaderEndsAtItsEnd(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	gate := make(chan struct{})
	defer close(gate)
	fw, err := g.Join(d, (&source{blob: blob, gate: gate}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fw.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(fw.RangeReader(ctx, 100, 900))
	if err != nil || !bytes.Equal(got, blob[100:1000]) {
		t.Fatalf("read of bytes 100-999: %d bytes, %v", len(got), err)
	}
	w := newSpanWriter()
	if _, err := io.Copy(w, fw.RangeReader(ctx, 24, 1000)); err != nil || !bytes.Equal(w.buf.Bytes(), blob[24:1024]) {
		t.Fatalf("copy of bytes 24-1023: %d bytes, %v", w.buf.Len(), err)
	}
}
