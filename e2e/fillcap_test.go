package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// chunkedUpstream is a hostile upstream: it serves one blob without a
// Content-Length (chunked), the first GET paced in steps that the test
// releases one by one (gates[k] opens step k+1), ranged GETs at once.
type chunkedUpstream struct {
	blob   []byte
	d      digest.Digest
	step   int
	gates  []chan struct{}
	gets   atomic.Int32
	ranged atomic.Int32
	URL    string
}

func newChunkedUpstream(t *testing.T, size, step int) *chunkedUpstream {
	t.Helper()
	u := &chunkedUpstream{blob: make([]byte, size), step: step}
	if _, err := rand.Read(u.blob); err != nil {
		t.Fatal(err)
	}
	u.d = digest.FromBytes(u.blob)
	for i := 0; i < size/step+1; i++ {
		u.gates = append(u.gates, make(chan struct{}))
	}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.openAll()
		srv.CloseClientConnections()
		srv.Close()
	})
	u.URL = srv.URL
	return u
}

// open releases step k+1 of the first GET.
func (u *chunkedUpstream) open(k int) {
	if k < len(u.gates) {
		select {
		case <-u.gates[k]:
		default:
			close(u.gates[k])
		}
	}
}

func (u *chunkedUpstream) openAll() {
	for k := range u.gates {
		u.open(k)
	}
}

func (u *chunkedUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		w.Write([]byte("{}"))
		return
	}
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+u.d.String()) {
		http.NotFound(w, r)
		return
	}
	u.gets.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	flusher := w.(http.Flusher)
	if rng := r.Header.Get("Range"); rng != "" {
		u.ranged.Add(1)
		from, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"))
		if err != nil || from >= len(u.blob) {
			http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(u.blob)-1, len(u.blob)))
		w.WriteHeader(http.StatusPartialContent)
		flusher.Flush() // no Content-Length: chunked
		w.Write(u.blob[from:])
		return
	}
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	for k, off := 0, 0; off < len(u.blob); k, off = k+1, off+u.step {
		if k > 0 {
			select {
			case <-u.gates[k-1]:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := w.Write(u.blob[off:min(off+u.step, len(u.blob))]); err != nil {
			return
		}
		flusher.Flush()
	}
}

// dirBytes is the total size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !fi.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

// TestFillWithoutSizeStopsStoringPastCap: a blob the upstream sends without
// a Content-Length stops being stored once it outgrows --max-size: tmp/
// never holds more than the cap, the client still gets every byte (the
// rest from the upstream, by a ranged GET), and nothing is kept or indexed.
func TestFillWithoutSizeStopsStoringPastCap(t *testing.T) {
	const size, step, maxSize = 4 << 20, 256 << 10, 1 << 20
	up := newChunkedUpstream(t, size, step)
	m := startMirror(t, up.URL, mirrorOpts{maxSize: maxSize, retries: -1})
	resp := get(t, m.URL+"/v2/app/big/blobs/"+up.d.String())
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 {
		t.Fatalf("status %d, Content-Length %d; want 200 and no length", resp.StatusCode, resp.ContentLength)
	}
	tmp := filepath.Join(m.Dir, "tmp")
	got := make([]byte, 0, size)
	for k := 1; len(got) < size; k++ {
		// The client has step k once the fill wrote it (or, past the cap,
		// once the ranged GET sent it): the fill is held at this point.
		chunk := make([]byte, min(k*step, size)-len(got))
		if _, err := io.ReadFull(resp.Body, chunk); err != nil {
			t.Fatalf("client read stopped at %d: %v", len(got), err)
		}
		got = append(got, chunk...)
		if n := dirBytes(t, tmp); n > maxSize {
			t.Fatalf("tmp/ holds %d bytes after the client got %d; the cap is %d", n, len(got), maxSize)
		}
		up.open(k - 1)
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the last byte: %d more bytes, err %v", len(rest), err)
	}
	if digest.FromBytes(got) != up.d {
		t.Fatalf("client got %d bytes hashing to %s, want %s", len(got), digest.FromBytes(got), up.d)
	}
	waitFills(t, m)
	if n := dirBytes(t, tmp); n != 0 {
		t.Errorf("tmp/ holds %d bytes after the fill ended", n)
	}
	if _, ok := m.Cache.HasContent(up.d); ok {
		t.Error("a blob larger than the cache was kept")
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "blobs", "sha256", up.d.Encoded()[:2], up.d.Encoded())); err == nil {
		t.Error("a blob larger than the cache is in blobs/")
	}
	if n := testutil.ToFloat64(m.Metrics.StoreErrors.WithLabelValues("too_large")); n != 1 {
		t.Errorf("wharf_store_errors_total{kind=too_large} = %v, want 1", n)
	}
	if g, r := up.gets.Load(), up.ranged.Load(); g != 2 || r != 1 {
		t.Errorf("upstream saw %d GETs, %d ranged; want the fill's and one ranged GET from the cap on", g, r)
	}
}

// TestFillWithoutSizeKeptWithoutMaxSize: with no --max-size the disk is the
// only bound (a full disk has its own path), so a blob without a
// Content-Length is stored like any other.
func TestFillWithoutSizeKeptWithoutMaxSize(t *testing.T) {
	up := newChunkedUpstream(t, 2<<20, 256<<10)
	up.openAll()
	m := startMirror(t, up.URL, mirrorOpts{retries: -1})
	resp := get(t, m.URL+"/v2/app/big/blobs/"+up.d.String())
	b, err := io.ReadAll(resp.Body)
	if err != nil || digest.FromBytes(b) != up.d {
		t.Fatalf("client got %d bytes, err %v", len(b), err)
	}
	waitFills(t, m)
	if _, ok := m.Cache.HasContent(up.d); !ok {
		t.Error("a blob without a Content-Length was not kept with no max size")
	}
}
