package peer

import (
	"testing"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the tests if a goroutine outlives them: the peer
// listeners, the clusters' loops and the caches' fills each have a stop
// path. The shared MinIO server stops first: its connections' goroutines
// end with it. The registry's own goroutines are named by LeakOptions.
func TestMain(m *testing.M) { minio.Main(m, upstreamtest.LeakOptions()...) }
