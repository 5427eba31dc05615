package writethrough

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// Worker's loop and its lines must stop when it is closed. The real
// registry keeps goroutines of its own (upstreamtest.LeakOptions).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
