package proxy

import (
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// Prefetcher fetches an image's blobs before the client asks for them
// (package prefetch). The manifest handler hands it every manifest the
// cache fetched for a client; the blob handler tells it of each blob a
// client reads, for its count of prefetched bytes put to use. Both return
// at once.
type Prefetcher interface {
	Image(repo cache.Repo, m *cache.Manifest)
	Used(d digest.Digest)
}
