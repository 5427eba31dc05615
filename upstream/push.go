package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Pushes, for write-through. Requests with a body carry GetBody, so the
// auth transport can replay them after a challenge for push scope (the
// scope is "repository:<repo>:pull,push" for every method but GET and
// HEAD). They are not retried by the transport: write-through retries a
// whole replication with its own backoff.

// PushBlob uploads size bytes read from open() as blob d of repo, in one
// PUT (a monolithic upload: the body streams from the file). With
// mountFrom it first asks the upstream to mount d from that repository,
// which costs no upload when the upstream allows it.
func (c *Client) PushBlob(ctx context.Context, repo string, d digest.Digest, size int64, open func() (io.ReadCloser, error), mountFrom string) error {
	repo = c.Repository(repo)
	op := "push blob " + repo + "@" + d.String()
	if err := c.checkBlobArgs(op, repo, d); err != nil {
		return err
	}
	u := c.endpoint(repo, "blobs", "uploads")
	u.Path += "/"
	if mountFrom != "" {
		u.RawQuery = url.Values{"mount": {d.String()}, "from": {c.Repository(mountFrom)}}.Encode()
	}
	resp, err := c.sendBody(ctx, http.MethodPost, transport.KindBlob, op, u, nil, nil, 0)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return nil // mounted
	}
	loc, err := resp.Location()
	if err != nil {
		return c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: "upload started without a Location", Err: ErrUnavailable})
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err = c.sendBody(ctx, http.MethodPut, transport.KindBlob, op, loc, h, open, size)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PutManifest pushes a manifest to repo under ref (a tag or its digest).
func (c *Client) PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	repo = c.Repository(repo)
	op := manifestOp(http.MethodPut, repo, ref)
	if _, err := c.checkManifestArgs(op, repo, ref); err != nil {
		return err
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	h := http.Header{"Content-Type": {mediaType}}
	resp, err := c.sendBody(ctx, http.MethodPut, transport.KindManifest, op, c.endpoint(repo, "manifests", ref), h, open, int64(len(body)))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// sendBody is send for requests with a body from open (nil: none).
func (c *Client) sendBody(ctx context.Context, method, kind, op string, u *url.URL, h http.Header, open func() (io.ReadCloser, error), size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(transport.WithKind(ctx, kind), method, u.String(), nil)
	if err != nil {
		return nil, c.invalid(op, err.Error())
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if open != nil {
		body, err := open()
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %s: open body: %w", c.name, op, err)
		}
		req.Body, req.GetBody, req.ContentLength = body, open, size
		if size == 0 {
			req.Body.Close()
			req.Body = http.NoBody
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.failure(c.transportError(ctx, op, err))
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.failure(c.statusError(op, resp))
	}
	return resp, nil
}
