package push

import (
	"testing"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// Writer's upload sessions run a sweeper, and the Cache under it its
// evictor and fills; each must stop when it is closed. The shared MinIO
// server stops first: its connections' goroutines end with it; the
// in-process registry keeps goroutines of its own
// (upstreamtest.LeakOptions).
func TestMain(m *testing.M) { minio.Main(m, upstreamtest.LeakOptions()...) }
