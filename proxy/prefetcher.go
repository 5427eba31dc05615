package proxy

import (
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// Prefetcher fetches an image's blobs before the client asks for them
// (package prefetch). The manifest handler hands it every manifest a GET
// was served (Image: it goes on if the cache fetched it, or a HEAD armed
// it) and every one a HEAD made the cache fetch (Arm); the blob handler
// tells it of each blob a client reads, for its count of prefetched bytes
// put to use. All return at once.
type Prefetcher interface {
	Image(repo cache.Repo, m *cache.Manifest)
	Arm(repo cache.Repo, m *cache.Manifest)
	Used(d digest.Digest)
}
