package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// GetBlob streams /v2/<repo>/blobs/<d> from offset, sending
// "Range: bytes=<offset>-" when offset > 0 (to resume a broken fill). It
// returns the body positioned at offset and the blob's total size: from
// Content-Length, or Content-Range's total on 206; -1 if unknown. An
// upstream that ignores Range and answers 200 has its first offset bytes
// read and dropped here, so the reader still starts at offset.
//
// Redirects are followed (Docker Hub serves blobs from a CDN). The Range
// header goes along; credentials never leave the registry's host.
//
// The bytes are not verified here: the cache hashes them as it writes.
// Reading them adds to metrics.UpstreamRead; a broken stream reads as an
// error wrapping ErrUnavailable (or ErrTimeout). The caller closes the body.
func (c *Client) GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	repo = c.Repository(repo)
	op := blobOp(http.MethodGet, repo, d)
	if err := c.checkBlobArgs(op, repo, d); err != nil {
		return nil, 0, err
	}
	if offset < 0 {
		return nil, 0, c.invalid(op, fmt.Sprintf("negative offset %d", offset))
	}
	var h http.Header
	if offset > 0 {
		h = http.Header{"Range": {fmt.Sprintf("bytes=%d-", offset)}}
	}
	resp, err := c.send(ctx, http.MethodGet, transport.KindBlob, op, c.endpoint(repo, "blobs", d.String()), h)
	if err != nil {
		return nil, 0, err
	}
	body := &blobReader{rc: resp.Body, c: c, ctx: ctx, op: op}
	size := resp.ContentLength
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		start, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			body.Close()
			return nil, 0, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
				Message: fmt.Sprintf("asked for bytes from %d, got Content-Range %q", offset, resp.Header.Get("Content-Range")),
				Err:     ErrUnavailable})
		}
		size = total
	case offset > 0:
		// The upstream ignored Range and sent the whole blob.
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			body.Close()
			if errors.Is(err, io.EOF) {
				err = &Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
					Message: fmt.Sprintf("offset %d is past the blob's end", offset), Err: ErrRejected}
			}
			return nil, 0, c.failure(err)
		}
	}
	return body, size, nil
}

// HeadBlob returns the blob's size (-1 if the upstream did not say), or
// ErrNotFound.
func (c *Client) HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	repo = c.Repository(repo)
	op := blobOp(http.MethodHead, repo, d)
	if err := c.checkBlobArgs(op, repo, d); err != nil {
		return 0, err
	}
	resp, err := c.send(ctx, http.MethodHead, transport.KindBlob, op, c.endpoint(repo, "blobs", d.String()), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

func (c *Client) checkBlobArgs(op, repo string, d digest.Digest) error {
	if err := c.checkRepo(op, repo); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return c.invalid(op, fmt.Sprintf("digest %q: %v", d, err))
	}
	return nil
}

func blobOp(method, repo string, d digest.Digest) string {
	return method + " blob " + repo + "@" + d.String()
}

// parseContentRange reads "bytes <start>-<end>/<total>" (total may be
// "*", returned as -1).
func parseContentRange(v string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	first, last, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil || start < 0 {
		return 0, 0, 0, false
	}
	end, err = strconv.ParseInt(strings.TrimSpace(last), 10, 64)
	if err != nil || end < start {
		return 0, 0, 0, false
	}
	if size == "*" {
		return start, end, -1, true
	}
	total, err = strconv.ParseInt(strings.TrimSpace(size), 10, 64)
	if err != nil || total <= end {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// blobReader counts the bytes read into metrics.UpstreamRead and turns a
// broken stream into the package's typed errors.
type blobReader struct {
	rc  io.ReadCloser
	c   *Client
	ctx context.Context // the GetBlob call's, to tell cancellation from failure
	op  string
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.c.metrics.UpstreamRead(b.c.name, int64(n))
	if err != nil && err != io.EOF {
		err = b.c.failure(b.c.transportError(b.ctx, b.op, err))
	}
	return n, err
}

func (b *blobReader) Close() error { return b.rc.Close() }
