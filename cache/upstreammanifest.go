package cache

import (
	"errors"
	"fmt"

	"github.com/wharf-mirror/wharf/oci"
)

// ErrNotManifest: the upstream answered a manifest request with something
// that is not a manifest wharf serves (text, HTML, JSON of another kind, a
// Content-Type the body contradicts, Docker schema 1). Nothing of it is
// stored; proxy/ answers 502 UNAVAILABLE.
var ErrNotManifest = errors.New("the upstream sent something that is not a manifest")

// checkFetched validates a manifest the upstream sent, before anything of
// it is stored or served. The digest and the size limit were checked by
// the upstream client; here the bytes must be a manifest of the media type
// they came as (the Content-Type, or the body's mediaType when the
// upstream sent none), by the same rules as a push: oci.ValidateManifest, so
// that there is one parser and one notion of a valid manifest.
//
// Docker schema 1 is refused, pulled as pushed: it is deprecated, gone
// from distribution v3 and from Docker Hub, refused by Docker Engine 28+
// and containerd 2 by default, and a signed schema 1 manifest's digest is
// over a canonical form, not the bytes received, so it could not be
// verified the way every other manifest is. It returns the manifest as
// parsed.
func (c *Cache) checkFetched(upstreamName string, m *Manifest) (oci.Parsed, error) {
	p, err := oci.ValidateManifest(m.Body, m.Descriptor.MediaType)
	if err != nil {
		c.opts.Metrics.UpstreamFailure(upstreamName, "not_manifest")
		return oci.Parsed{}, fmt.Errorf("%s from upstream %s: %w: %w", m.Descriptor.Digest, upstreamName, ErrNotManifest, err)
	}
	return p.Parsed, nil
}
