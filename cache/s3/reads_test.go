package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/s3"
)

// recordedStore is a store on a new bucket of the shared server whose
// requests rec sees.
func recordedStore(t *testing.T) (*s3.Store, *recorder) {
	srv := shared.Get(t)
	rec := &recorder{}
	o := options(srv, srv.Bucket(t))
	o.WrapTransport = func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }
	return open(t, o), rec
}

func putRandom(t *testing.T, s *s3.Store, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := random(t, n)
	f := tempFile(t)
	defer f.Close()
	f.Write(b)
	d := digest.FromBytes(b)
	if err := s.Put(ctx, f, d, int64(n)); err != nil {
		t.Fatal(err)
	}
	return b, d
}

// TestOpenReadsOnlyTheRange: Open, Stat and Seek fetch no content; a read
// after a seek fetches from the offset on, and what it reads is about what
// was asked for, not the object.
func TestOpenReadsOnlyTheRange(t *testing.T) {
	s, rec := recordedStore(t)
	const size = 8 << 20
	b, d := putRandom(t, s, size)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if fi, err := c.Stat(); err != nil || fi.Size() != size {
		t.Fatalf("Stat: %v, %v", fi, err)
	}
	if end, err := c.Seek(0, io.SeekEnd); err != nil || end != size {
		t.Fatalf("Seek to end: %d, %v", end, err)
	}
	const at = 5 << 20
	c.Seek(at, io.SeekStart)
	if gets := rec.getRanges(); len(gets) != 0 {
		t.Fatalf("Open, Stat and Seek sent GETs %q; want none", gets)
	}
	before := rec.read.Load()
	got := make([]byte, 1000)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, b[at:at+1000]) {
		t.Fatalf("read at %d: %v; want the bytes put there", at, err)
	}
	c.Close()
	if gets := rec.getRanges(); !slices.Equal(gets, []string{fmt.Sprintf("bytes=%d-", at)}) {
		t.Errorf("GETs sent: %q; want one from byte %d", gets, at)
	}
	if n := rec.read.Load() - before; n > 64<<10 {
		t.Errorf("read %d bytes of the %d-byte object for 1000; want the range only", n, size)
	}
}

// TestSequentialReadIsOneGET: reading on to the end continues one GET;
// going back costs one more.
func TestSequentialReadIsOneGET(t *testing.T) {
	s, rec := recordedStore(t)
	b, d := putRandom(t, s, 3<<20)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	c.Seek(10, io.SeekStart)
	if got, err = io.ReadAll(c); err != nil || !bytes.Equal(got, b[10:]) {
		t.Fatalf("ReadAll from 10: %d bytes, %v", len(got), err)
	}
	if gets := rec.getRanges(); !slices.Equal(gets, []string{"", "bytes=10-"}) {
		t.Errorf("GETs sent: %q; want the whole object once, then from byte 10", gets)
	}
}

// TestServeContentRange: the hit path. http.ServeContent answers a Range
// request from the store's reader with the right bytes, fetching about
// as many from the store.
func TestServeContentRange(t *testing.T) {
	s, rec := recordedStore(t)
	const size = 4 << 20
	b, d := putRandom(t, s, size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Open(r.Context(), d)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer c.Close()
		w.Header().Set("Content-Type", "application/octet-stream") // as the proxy does: no sniffing read
		fi, _ := c.Stat()
		http.ServeContent(w, r, "", fi.ModTime(), c)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Range", "bytes=3000000-3000999")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, b[3000000:3001000]) {
		t.Fatalf("range request: %s, %d bytes; want 206 and bytes 3000000-3000999", resp.Status, len(got))
	}
	if n := rec.read.Load(); n > 64<<10 {
		t.Errorf("read %d bytes from the store for a 1000-byte range", n)
	}
	srv.Client().CloseIdleConnections()
}
