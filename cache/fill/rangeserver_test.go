package fill_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/upstream"
)

// rangeServer is a registry of one blob for the faults the real one will
// not make on demand: it serves the blob with http.ServeContent (real
// Range handling), and fault changes a request's answer. It counts the
// ranges asked and the body bytes sent.
type rangeServer struct {
	blob []byte
	d    digest.Digest
	srv  *httptest.Server

	mu     sync.Mutex
	ranges []string // the Range header of each blob GET
	fault  func(i int, rng string) rangeFault
	sent   atomic.Int64

	// hold > 0 holds each ranged answer's body, once its headers are
	// sent, until this many ranged requests are open at once (bounded by
	// a timeout), so that a test sees they ran concurrently.
	hold    int
	open    int
	maxOpen int
	all     chan struct{}
}

type rangeFault struct {
	ignoreRange  bool
	corrupt      bool   // flip the first byte sent
	cutAfter     int64  // > 0: abort after this many body bytes
	contentRange string // replaces the 206's Content-Range
	latency      time.Duration
	bytesPerSec  int64 // > 0: pace the body (one connection's rate)
	extra        int64 // > 0: a chunked 206 with this many bytes more than asked
}

func newRangeServer(t testing.TB, blob []byte) *rangeServer {
	s := &rangeServer{blob: blob, d: digest.FromBytes(blob), all: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *rangeServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/blobs/"+s.d.String()) {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	i, rng := len(s.ranges), r.Header.Get("Range")
	s.ranges = append(s.ranges, rng)
	var ft rangeFault
	if s.fault != nil {
		ft = s.fault(i, rng)
	}
	s.mu.Unlock()
	if ft.ignoreRange {
		r.Header.Del("Range")
	}
	if ft.latency > 0 {
		time.Sleep(ft.latency) // the round trip a WAN adds, not synchronisation
	}
	if ft.extra > 0 {
		s.serveExtra(w, rng, ft.extra)
		return
	}
	fw := &faultWriter{ResponseWriter: w, s: s, ft: ft, start: time.Now()}
	defer fw.release()
	http.ServeContent(fw, r, "", time.Time{}, bytes.NewReader(s.blob))
}

// serveExtra answers rng ("bytes=a-b") with its Content-Range and,
// chunked (no Content-Length), extra bytes more than it.
func (s *rangeServer) serveExtra(w http.ResponseWriter, rng string, extra int64) {
	var a, b int64
	if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &a, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(s.blob)))
	w.WriteHeader(http.StatusPartialContent)
	http.NewResponseController(w).Flush() // headers out: the body is chunked
	n, _ := w.Write(s.blob[a:min(b+1+extra, int64(len(s.blob)))])
	s.sent.Add(int64(n))
}

// requests returns the Range headers of the blob GETs seen.
func (s *rangeServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *rangeServer) concurrency() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen
}

// enter counts an open ranged answer and waits until hold are open.
func (s *rangeServer) enter(ctx context.Context) {
	s.mu.Lock()
	s.open++
	s.maxOpen = max(s.maxOpen, s.open)
	if s.open == s.hold {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
}

// client is an upstream client of the server, closed at cleanup.
func (s *rangeServer) client(t testing.TB) *upstream.Client {
	c, err := upstream.New(upstream.Options{URL: s.srv.URL, Backoff: time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sources are the fill's Source and RangeSource over c, as the cache
// builds them.
func sources(c *upstream.Client, d digest.Digest) (fill.Source, fill.RangeSource) {
	return func(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
			return c.GetBlob(ctx, "r", d, offset)
		}, func(ctx context.Context, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
			return c.GetBlobRange(ctx, "r", d, offset, length, first)
		}
}

type faultWriter struct {
	http.ResponseWriter
	s       *rangeServer
	ft      rangeFault
	start   time.Time
	n       int64
	entered bool
}

func (w *faultWriter) WriteHeader(code int) {
	if code == http.StatusPartialContent && w.ft.contentRange != "" {
		w.Header().Set("Content-Range", w.ft.contentRange)
	}
	w.ResponseWriter.WriteHeader(code)
	if code == http.StatusPartialContent && w.s.hold > 0 {
		http.NewResponseController(w.ResponseWriter).Flush()
		w.entered = true
		w.s.enter(context.Background())
	}
}

func (w *faultWriter) release() {
	if w.entered {
		w.s.mu.Lock()
		w.s.open--
		w.s.mu.Unlock()
	}
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.ft.cutAfter > 0 && w.n+int64(len(p)) > w.ft.cutAfter {
		p = p[:w.ft.cutAfter-w.n]
		m, _ := w.ResponseWriter.Write(p)
		w.s.sent.Add(int64(m))
		http.NewResponseController(w.ResponseWriter).Flush()
		panic(http.ErrAbortHandler)
	}
	if w.ft.corrupt && w.n == 0 && len(p) > 0 {
		p = append([]byte{p[0] ^ 0xff}, p[1:]...)
	}
	var written int
	for len(p) > 0 {
		chunk := p
		if w.ft.bytesPerSec > 0 {
			chunk = p[:min(len(p), int(w.ft.bytesPerSec/50)+1)]
		}
		m, err := w.ResponseWriter.Write(chunk)
		written += m
		w.n += int64(m)
		w.s.sent.Add(int64(m))
		if err != nil {
			return written, err
		}
		p = p[m:]
		if w.ft.bytesPerSec > 0 {
			due := w.start.Add(time.Duration(float64(w.n) / float64(w.ft.bytesPerSec) * float64(time.Second)))
			time.Sleep(time.Until(due)) // pacing one connection, not synchronisation
		}
	}
	return written, nil
}
