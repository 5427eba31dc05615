package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// Manifest is a manifest as the upstream sent it.
type Manifest struct {
	// Descriptor: MediaType is the Content-Type without parameters (the
	// body's "mediaType" field if there was none), Digest the hash of Body
	// (sha256, or the algorithm of the digest asked for), Size len(Body).
	Descriptor ocispec.Descriptor
	// Body is the exact bytes received: re-encoding would change the digest.
	Body []byte
	// Checked, for a tag, is when the answer was last checked against the
	// registry; zero means now. This client leaves it zero; an Origin
	// relaying another cache's answer (package peer) sets it.
	Checked time.Time
	// Shared says the bytes are in the cluster's shared store already: an
	// Origin relaying another replica's answer (package peer) sets it,
	// and the cache keeps a local copy without asking the shared store.
	Shared bool
}

// GetManifest fetches /v2/<repo>/manifests/<ref>, ref a tag or a digest.
// accept is sent as given, as one Accept header joined by ", "; the
// upstream picks the media type, so what comes back need not be the first
// one asked for (distribution answers an index asked for as a schema2
// manifest with the index itself).
//
// The digest is computed from the bytes received; ErrDigestMismatch if ref
// is a digest they do not match, or if Docker-Content-Digest names another.
// A body over oci.MaxManifestSize is ErrTooLarge.
func (c *Client) GetManifest(ctx context.Context, repo, ref string, accept []string) (*Manifest, error) {
	repo = c.Repository(repo)
	op := manifestOp(http.MethodGet, repo, ref)
	want, err := c.checkManifestArgs(op, repo, ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, http.MethodGet, transport.KindManifest, op, c.endpoint(repo, "manifests", ref), acceptHeader(accept))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > oci.MaxManifestSize {
		return nil, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: fmt.Sprintf("%d bytes announced, the limit is %d", resp.ContentLength, oci.MaxManifestSize), Err: ErrTooLarge})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, oci.MaxManifestSize+1))
	c.metrics.UpstreamRead(c.name, int64(len(body)))
	if err != nil {
		return nil, c.failure(c.transportError(ctx, op, err))
	}
	if len(body) > oci.MaxManifestSize {
		return nil, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: fmt.Sprintf("more than %d bytes", oci.MaxManifestSize), Err: ErrTooLarge})
	}
	got, err := oci.ManifestDigest(body, want)
	if err != nil {
		return nil, c.mismatch(op, resp.StatusCode, fmt.Sprintf("asked for %v", err))
	}
	if announced, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil && announced.Algorithm().Available() {
		if err := oci.VerifyBytes(body, announced); err != nil {
			return nil, c.mismatch(op, resp.StatusCode, fmt.Sprintf("Docker-Content-Digest %v", err))
		}
	}
	return &Manifest{
		Descriptor: ocispec.Descriptor{MediaType: mediaType(resp.Header, body), Digest: got, Size: int64(len(body))},
		Body:       body,
	}, nil
}

// HeadManifest asks for /v2/<repo>/manifests/<ref> without the body: the
// cheap way to see whether a tag moved (a HEAD does not count against
// Docker Hub's pull limit). The descriptor comes from Docker-Content-Digest,
// Content-Type and Content-Length (Size -1 if absent). Without
// Docker-Content-Digest the answer is ErrNoDigest and the caller GETs;
// with a digest ref the announced digest must be that one.
func (c *Client) HeadManifest(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, error) {
	repo = c.Repository(repo)
	op := manifestOp(http.MethodHead, repo, ref)
	want, err := c.checkManifestArgs(op, repo, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp, err := c.send(ctx, http.MethodHead, transport.KindManifest, op, c.endpoint(repo, "manifests", ref), acceptHeader(accept))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp.Body.Close()
	h := resp.Header.Get("Docker-Content-Digest")
	if h == "" {
		return ocispec.Descriptor{}, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode, Err: ErrNoDigest})
	}
	d, err := digest.Parse(h)
	if err != nil {
		return ocispec.Descriptor{}, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: fmt.Sprintf("Docker-Content-Digest %q: %v", h, err), Err: ErrNoDigest})
	}
	if want != "" && d != want {
		return ocispec.Descriptor{}, c.mismatch(op, resp.StatusCode, fmt.Sprintf("asked for %s, Docker-Content-Digest is %s", want, d))
	}
	return ocispec.Descriptor{MediaType: mediaType(resp.Header, nil), Digest: d, Size: resp.ContentLength}, nil
}

func (c *Client) checkManifestArgs(op, repo, ref string) (digest.Digest, error) {
	if err := c.checkRepo(op, repo); err != nil {
		return "", err
	}
	want, err := c.checkRef(op, repo, ref)
	if err != nil {
		return "", err
	}
	if want != "" && !want.Algorithm().Available() {
		return "", c.invalid(op, fmt.Sprintf("digest algorithm %q is not available", want.Algorithm()))
	}
	return want, nil
}

func (c *Client) mismatch(op string, status int, msg string) error {
	return c.failure(&Error{Upstream: c.name, Op: op, Status: status, Message: msg, Err: ErrDigestMismatch})
}

func acceptHeader(accept []string) http.Header {
	if len(accept) == 0 {
		return nil
	}
	return http.Header{"Accept": {strings.Join(accept, ", ")}}
}

// mediaType is the Content-Type without parameters, or else the body's
// "mediaType" field (which schema2 and OCI manifests may carry).
func mediaType(h http.Header, body []byte) string {
	if ct := h.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			return mt
		}
		mt, _, _ := strings.Cut(ct, ";")
		return strings.TrimSpace(mt)
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if len(body) > 0 && json.Unmarshal(body, &probe) == nil {
		return probe.MediaType
	}
	return ""
}
