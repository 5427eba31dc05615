package peer

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the tests if a goroutine outlives them: the peer
// listeners, the clusters' loops and the caches' fills each have a stop
// path. The registry's own goroutines are named by LeakOptions.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
