package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/push"
)

// fileStore serves one blob from a file, as the cache serves a hit.
type fileStore struct {
	recorder
	path    string
	d       digest.Digest
	size    int64
	body    []byte
	handler http.Handler
}

func (s *fileStore) Blob(_ context.Context, _ cache.Repo, d digest.Digest) (*cache.Blob, error) {
	if d != s.d {
		return nil, cache.ErrNotFound
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	return &cache.Blob{Digest: d, Size: s.size, ModTime: time.Unix(1700000000, 0), File: f}, nil
}

func (s *fileStore) StatBlob(_ context.Context, _ cache.Repo, d digest.Digest) (int64, error) {
	if d != s.d {
		return 0, cache.ErrNotFound
	}
	return s.size, nil
}

// FuzzBlobRange sends fuzzed Range headers to the real blob handler over a
// stored file (blobs of 0, 1 and 1000 bytes). Every answer is the whole
// blob (200), parts that lie inside it and hold its bytes (206, one range
// or multipart), or 416 naming its size. The fill path's own parser
// (parseRange, for blobs still arriving) must not answer a range the file
// path refuses, nor another one than it.
func FuzzBlobRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-2", "bytes=999-1500",
		"bytes=0-1,3-4", "bytes=1000-", "bytes= 1-2", "bytes=-", "items=0-1", "bytes=0-0," + strings.Repeat("1-1,", 50),
		"bytes=9223372036854775807-", "bytes=-9223372036854775808", "bytes=0-9223372036854775807"} {
		f.Add(s, uint8(2), false)
	}
	dir := f.TempDir()
	var err error
	var stores []*fileStore
	for i, size := range []int{0, 1, 1000} {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(j*7 + 3)
		}
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, body, 0o600); err != nil {
			f.Fatal(err)
		}
		s := &fileStore{path: p, d: digest.FromBytes(body), size: int64(size), body: body}
		if s.handler, err = New(Options{Store: s, Upstream: hub{}}); err != nil {
			f.Fatal(err)
		}
		stores = append(stores, s)
	}
	f.Fuzz(func(t *testing.T, rng string, which uint8, head bool) {
		s := stores[int(which)%len(stores)]
		want := s.body
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req := httptest.NewRequest(method, "/v2/a/blobs/"+s.d.String(), nil)
		req.Header.Set("Range", rng)
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, req)
		got, cr := w.Body.Bytes(), w.Header().Get("Content-Range")
		if head {
			if w.Code != http.StatusOK || len(got) != 0 {
				t.Fatalf("HEAD: %d with %d body bytes", w.Code, len(got))
			}
			return
		}
		start, length, perr := parseRange(rng, s.size)
		switch w.Code {
		case http.StatusOK:
			if !bytes.Equal(got, want) {
				t.Fatalf("200 with %d bytes, not the blob's %d", len(got), len(want))
			}
			if perr == nil {
				t.Fatalf("Range %q: the file path sends the whole blob, the fill path bytes %d+%d", rng, start, length)
			}
		case http.StatusRequestedRangeNotSatisfiable:
			// http.ServeContent refuses a malformed range with a bare
			// 416; an unsatisfiable one names the size.
			if cr != "" && cr != fmt.Sprintf("bytes */%d", s.size) {
				t.Fatalf("416 with Content-Range %q", cr)
			}
			if perr == nil {
				t.Fatalf("Range %q: the file path refuses it, the fill path sends bytes %d+%d", rng, start, length)
			}
		case http.StatusPartialContent:
			mt, params, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
			if mt != "multipart/byteranges" {
				a := checkPart(t, cr, got, want)
				if perr == nil && (a != start || int64(len(got)) != length) {
					t.Fatalf("Range %q: the file path sends bytes %d+%d, the fill path %d+%d", rng, a, len(got), start, length)
				}
				return
			}
			mr := multipart.NewReader(bytes.NewReader(got), params["boundary"])
			for {
				part, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				body, _ := io.ReadAll(part)
				checkPart(t, part.Header.Get("Content-Range"), body, want)
			}
		default:
			t.Fatalf("Range %q: status %d", rng, w.Code)
		}
	})
}

// checkPart fails unless a part's Content-Range lies inside the blob and
// body is those bytes of it; it returns the part's first byte.
func checkPart(t *testing.T, contentRange string, body, blob []byte) int64 {
	t.Helper()
	var a, b, size int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &a, &b, &size); err != nil {
		t.Fatalf("Content-Range %q: %v", contentRange, err)
	}
	if size != int64(len(blob)) || a < 0 || b < a || b >= size {
		t.Fatalf("Content-Range %q outside a blob of %d bytes", contentRange, len(blob))
	}
	if !bytes.Equal(body, blob[a:b+1]) {
		t.Fatalf("Content-Range %q with other bytes", contentRange)
	}
	return a
}

// FuzzParseRange: a range the fill path accepts lies inside the blob and
// is not empty.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=10-", "bytes=3-1", "bytes=0-1,2-3", "bytes=-0", "bytes=x-y"} {
		f.Add(s, int64(10))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			return // parseRange is called only for a known size
		}
		start, length, err := parseRange(header, size)
		if err != nil {
			if !errors.Is(err, errRangeMalformed) && !errors.Is(err, errRangeUnsatisfiable) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if start < 0 || length < 1 || start > size-length {
			t.Fatalf("%q of %d bytes: start %d length %d", header, size, start, length)
		}
	})
}

// FuzzContentRange: an upload chunk's Content-Range is refused with
// ErrUploadInvalid (a 416 to the client), or read as a range that starts at
// 0 or later and ends at most one byte before it starts (an empty chunk);
// what it reads, written back in the spec's form, reads the same.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"", "0-99", "bytes 0-99/100", "bytes=0-99", "100-199/*", "5-4", "5-3", "-1-5", "a-b", "0-", " bytes 1-2 ", "9223372036854775807-9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, err := contentRange(v)
		switch {
		case err != nil:
			if !errors.Is(err, push.ErrUploadInvalid) {
				t.Fatalf("%q: untyped error %v", v, err)
			}
			return
		case v == "":
			if start != -1 || end != -1 {
				t.Fatalf("no header read as %d-%d", start, end)
			}
			return
		case start < 0 || end < start-1:
			t.Fatalf("%q read as %d-%d", v, start, end)
		}
		s2, e2, err := contentRange(fmt.Sprintf("%d-%d", start, end))
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("%q: %d-%d reads back as %d-%d, %v", v, start, end, s2, e2, err)
		}
	})
}
