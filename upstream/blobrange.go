package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// GetBlobRange asks for length bytes of /v2/<repo>/blobs/<d> from offset
// ("Range: bytes=<offset>-<offset+length-1>"), for a fill that fetches a
// big blob as several ranges at once. It returns the body and the blob's
// total size from the 206's Content-Range (-1 for "*"), whose span must be
// the one asked for, or its end clamped to the blob's end (which, for a
// total of "*", may be anywhere before the end asked); any other span
// is an ErrUnavailable failure, as the bytes would land in the wrong place.
//
// whole says the upstream ignored Range and answered 200: the body is then
// the whole blob from byte 0, whatever offset asked, and size its
// Content-Length (-1 if unknown). The caller decides what it is worth (a
// fill asking from 0 reads it as its one stream); nothing is skipped here.
//
// first says the request is a fill's first, from 0, which does not know
// the blob's size yet. A 416 to it is not a failure: an empty blob has no
// satisfiable range, and some registries (go-containerregistry's) refuse
// a range that ends past the blob instead of clamping it as RFC 9110
// says. The blob is then asked for whole, with no Range, and returned as
// whole: one more round trip, the fill reads it as one stream. To any
// other request (a later range, or a resume from 0 of a blob known to
// have bytes) a 416 is the upstream's refusal (ErrRejected). The body is
// counted and fails as GetBlob's; the caller closes it.
func (c *Client) GetBlobRange(ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (body io.ReadCloser, size int64, whole bool, err error) {
	repo = c.Repository(repo)
	op := blobOp(http.MethodGet, repo, d)
	if err := c.checkBlobArgs(op, repo, d); err != nil {
		return nil, 0, false, err
	}
	if offset < 0 || length <= 0 {
		return nil, 0, false, c.invalid(op, fmt.Sprintf("range of %d bytes from %d", length, offset))
	}
	end := offset + length - 1
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", offset, end)}}
	resp, err := c.sendAny(ctx, http.MethodGet, transport.KindBlob, op, c.endpoint(repo, "blobs", d.String()), h)
	if err != nil {
		return nil, 0, false, err
	}
	switch {
	case first && offset == 0 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		body, size, err := c.GetBlob(ctx, repo, d, 0)
		return body, size, err == nil, err
	case resp.StatusCode/100 != 2:
		return nil, 0, false, c.failure(c.statusError(op, resp))
	}
	rc := &blobReader{rc: resp.Body, c: c, ctx: ctx, op: op}
	if resp.StatusCode != http.StatusPartialContent {
		return rc, resp.ContentLength, true, nil
	}
	cr := resp.Header.Get("Content-Range")
	start, last, total, ok := parseContentRange(cr)
	switch {
	case total >= 0 && end >= total:
		end = total - 1 // the server clamps a range past the end
	case total < 0 && ok && start == offset && last < end:
		end = last // a blob of untold size that ends first
	}
	if !ok || start != offset || last != end || (resp.ContentLength >= 0 && resp.ContentLength != end-start+1) {
		rc.Close()
		return nil, 0, false, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: fmt.Sprintf("asked for bytes %d-%d, got Content-Range %q, %d bytes", offset, end, cr, resp.ContentLength),
			Err:     ErrUnavailable})
	}
	return rc, total, false, nil
}
