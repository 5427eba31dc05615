package bench

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
)

// manifestAccept is what the docker daemon's registry client sends when it
// resolves a reference: one Accept header per type it can pull, image
// manifests first (moby's distribution.ManifestMediaTypes, without the
// schema 1 types it no longer pulls). Sending them as separate header lines,
// as the daemon does, also checks that the server reads them all.
var manifestAccept = []string{
	oci.DockerManifest,
	oci.DockerManifestList,
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
}

// manifest is the union of an image manifest and an index, enough to follow
// either.
type manifest struct {
	MediaType string               `json:"mediaType"`
	Config    ocispec.Descriptor   `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`

	digest digest.Digest
	kind   string // "index" or "image"
}

// fetchManifest gets repo's manifest ref and checks its digest: against
// want when pulling by digest, else against Docker-Content-Digest when the
// server sends one.
func (c *client) fetchManifest(ctx context.Context, repo, ref string, want digest.Digest) (_ *manifest, err error) {
	defer func() { c.settle(ctx, "manifest", err) }()
	start := time.Now()
	resp, err := c.do(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+ref), http.Header{"Accept": manifestAccept}, nil, 0)
	if err != nil {
		return nil, err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, oci.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w: %w", repo, ref, ErrCut, err)
	}
	c.ctr.bytes.Add(int64(len(body)))
	if len(body) > oci.MaxManifestSize {
		return nil, fmt.Errorf("%w: %s@%s is larger than %d bytes", ErrManifest, repo, ref, oci.MaxManifestSize)
	}
	if want == "" {
		want, _ = digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	}
	if want == "" {
		want = digest.FromBytes(body)
	} else if c.check {
		if err := want.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s@%s: %w", ErrManifest, repo, ref, err)
		}
		if err := oci.VerifyBytes(body, want); err != nil {
			return nil, fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
		}
	}
	m, err := parseManifest(body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", repo, ref, err)
	}
	m.digest = want
	c.rec.observe("manifest", time.Since(start))
	return m, nil
}

// parseManifest reads body as an index or an image manifest. The
// Content-Type decides; a generic one (some servers send application/json)
// leaves it to the body's mediaType, then to which fields are present.
func parseManifest(body []byte, contentType string) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if !strings.HasPrefix(mt, "application/vnd.") {
		mt = m.MediaType
	}
	switch {
	case mt == ocispec.MediaTypeImageIndex || mt == oci.DockerManifestList:
		m.kind = "index"
	case mt == ocispec.MediaTypeImageManifest || mt == oci.DockerManifest:
		m.kind = "image"
	case mt == "" && len(m.Manifests) > 0:
		m.kind = "index"
	case mt == "" && m.Config.Digest != "":
		m.kind = "image"
	default:
		return nil, fmt.Errorf("%w: media type %q", ErrManifest, mt)
	}
	return &m, nil
}

// platform is what an index entry must match: parsed and matched as
// warm and export do (oci.MatchPlatform), so arm64/v8 finds an arm64
// entry without a variant.
type platform struct{ ocispec.Platform }

func parsePlatform(s string) (platform, error) {
	p, err := oci.ParsePlatform(s)
	return platform{p}, err
}

func (p platform) String() string { return oci.FormatPlatforms([]ocispec.Platform{p.Platform}) }

// pick returns the first entry of an index for p. Attestation manifests
// (platform unknown/unknown) never match.
func (p platform) pick(idx *manifest) (ocispec.Descriptor, error) {
	for _, d := range idx.Manifests {
		if oci.MatchPlatform(d.Platform, []ocispec.Platform{p.Platform}) {
			return d, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w %s in index %s", ErrPlatform, p, idx.digest)
}
