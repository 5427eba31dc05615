package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf-mirror/wharf/cache"
)

// blob serves GET and HEAD /v2/<name>/blobs/<digest>.
func (s *server) blob(w http.ResponseWriter, r *http.Request) error {
	repo, d, err := s.digestTarget(r)
	if err != nil {
		return err
	}
	info := infoFrom(r.Context())
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "max-age=31536000, immutable")

	if r.Method == http.MethodHead {
		size, err := s.opts.Store.StatBlob(r.Context(), repo, d)
		if err != nil {
			return err
		}
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	b, err := s.opts.Store.Blob(r.Context(), repo, d)
	if err != nil {
		return err
	}
	defer b.Close()
	if s.opts.Prefetch != nil {
		s.opts.Prefetch.Used(d)
	}
	if b.File != nil {
		// A verified file: ServeContent does Range, 416, If-None-Match and
		// sends the file with sendfile through responseWriter.ReadFrom.
		info.source = "cache"
		if tameRange(w, r, b.Size) {
			return nil
		}
		http.ServeContent(w, r, "", b.ModTime, b.File)
		return nil
	}
	info.source = "upstream"
	return serveFill(w, r, b)
}

// serveFill streams a blob that is still arriving. It honours a single
// Range (the bytes before it may not have arrived yet: the reader waits),
// and flushes after every chunk so clients get bytes as the upstream sends
// them. A fill that fails mid-way aborts the connection.
func serveFill(w http.ResponseWriter, r *http.Request, b *cache.Blob) error {
	h := w.Header()
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, h.Get("ETag")) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	start, length, status := int64(0), b.Size, http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && b.Size >= 0 {
		s, l, err := parseRange(rng, b.Size)
		switch {
		case errors.Is(err, errRangeUnsatisfiable):
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
			h.Del("Content-Type")
			http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
			return nil
		case err == nil:
			start, length, status = s, l, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, s+l-1, b.Size))
		}
		// A malformed Range is ignored, as RFC 9110 allows.
	}
	if length >= 0 {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	src := b.Fill.Reader(r.Context(), start)
	if status == http.StatusPartialContent {
		// A whole blob needs no limit: the fill's reader ends only once
		// the blob verified (an empty one included), and fails otherwise.
		src = io.LimitReader(src, length)
	}
	// The status goes out with the first byte, not before it: a fill that
	// fails before any byte (the upstream refused, reset or was marked
	// down) is then answered with a v2 error the client can read, instead
	// of a connection cut before any response.
	buf := make([]byte, 64<<10)
	n, err := src.Read(buf)
	if n == 0 && err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", err, errFillFailed)
		for _, k := range []string{"Content-Length", "Content-Range", "ETag", "Docker-Content-Digest", "Cache-Control", "Accept-Ranges"} {
			h.Del(k)
		}
		return err
	}
	w.WriteHeader(status)
	return copyFlushing(w, src, buf, n, err)
}

// copyFlushing writes the first n bytes of buf (read with firstErr), then
// the rest of src, flushing after every chunk.
func copyFlushing(w http.ResponseWriter, src io.Reader, buf []byte, n int, firstErr error) error {
	flusher, _ := w.(http.Flusher)
	for err := firstErr; ; n, err = src.Read(buf) {
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maxRanges is the most ranges one Range header may ask for. Registry
// clients ask for one (a resumed download); a few more cost little. Past
// it, or when ranges overlap, the header is ignored and the blob is
// answered whole (200), as RFC 9110 §14.2 allows for exactly these signs
// of a broken client or an attack: every client must take a 200, whereas
// a 416 would fail a request a plain GET would have served. A whole
// answer costs no more than that plain GET; 10,000 one-byte ranges
// answered as multipart turn 109 KB of request into 1.5 MB of part headers.
const maxRanges = 8

// dropAbusiveRange removes r's Range header when it asks for more than
// maxRanges ranges or for ranges that overlap (against size), so that
// http.ServeContent answers the whole blob. One range, malformed ranges and
// unsatisfiable ones are left to ServeContent (416 and friends).
func dropAbusiveRange(r *http.Request, size int64) {
	h := r.Header.Get("Range")
	if !strings.Contains(h, ",") {
		return
	}
	if strings.Count(h, ",") >= maxRanges || rangesOverlap(h, size) {
		r.Header.Del("Range")
	}
}

// rangesOverlap reports whether two of the (at most maxRanges) satisfiable
// ranges of a "bytes=" header share a byte.
func rangesOverlap(h string, size int64) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return false
	}
	type span struct{ start, end int64 }
	var spans []span
	for _, part := range strings.Split(spec, ",") {
		s, l, err := parseRange("bytes="+strings.TrimSpace(part), size)
		if err != nil {
			continue
		}
		for _, o := range spans {
			if s < o.end && o.start < s+l {
				return true
			}
		}
		spans = append(spans, span{s, s + l})
	}
	return false
}

var (
	errRangeUnsatisfiable = errors.New("range not satisfiable")
	errRangeMalformed     = errors.New("malformed range")
)

// parseRange reads one "bytes=" range against size. Multiple ranges are
// reported malformed, so the caller sends the whole blob.
func parseRange(header string, size int64) (start, length int64, err error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, errRangeMalformed
	}
	// Trimmed as http.ServeContent trims (ASCII blanks, not \v or \f), so
	// the fill path never serves a range the file path refuses.
	first, last, ok := strings.Cut(strings.Trim(spec, " \t\r\n"), "-")
	if !ok {
		return 0, 0, errRangeMalformed
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, errRangeMalformed
		}
		if n == 0 || size == 0 {
			return 0, 0, errRangeUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, nil
	}
	s, err := strconv.ParseInt(first, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, errRangeMalformed
	}
	if s >= size {
		return 0, 0, errRangeUnsatisfiable
	}
	e := size - 1
	if last != "" {
		if e, err = strconv.ParseInt(last, 10, 64); err != nil || e < s {
			return 0, 0, errRangeMalformed
		}
		e = min(e, size-1)
	}
	return s, e - s + 1, nil
}
