package upstream

import (
	"context"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Deletes, for write-through: a DELETE a client sent to wharf, passed on.
// Like pushes they are not retried by the transport (write-through retries
// a job with its own backoff). A 404 is ErrNotFound, which the caller
// takes as "already gone".

// DeleteManifest deletes repo's manifest ref: a tag (the upstream removes
// the tag only) or a digest (the manifest, and the tags pointing at it).
func (c *Client) DeleteManifest(ctx context.Context, repo, ref string) error {
	repo = c.Repository(repo)
	op := manifestOp(http.MethodDelete, repo, ref)
	if _, err := c.checkManifestArgs(op, repo, ref); err != nil {
		return err
	}
	return c.delete(ctx, transport.KindManifest, op, c.endpoint(repo, "manifests", ref))
}

// DeleteBlob deletes blob d from repo.
func (c *Client) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	repo = c.Repository(repo)
	op := "DELETE blob " + repo + "@" + d.String()
	if err := c.checkBlobArgs(op, repo, d); err != nil {
		return err
	}
	return c.delete(ctx, transport.KindBlob, op, c.endpoint(repo, "blobs", d.String()))
}

func (c *Client) delete(ctx context.Context, kind, op string, u *url.URL) error {
	resp, err := c.sendBody(ctx, http.MethodDelete, kind, op, u, nil, nil, 0)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
