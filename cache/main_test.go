package cache

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// store starts its evictor, its fills and detached upstream calls, and
// each must stop when it is closed. The benchmarks' real registry keeps
// goroutines of its own that are not ours to stop (upstreamtest.LeakOptions
// names them).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
