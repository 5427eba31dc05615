package inspect_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if a goroutine outlives them: the
// stores they open start an evictor and an access-log writer, which
// Close must stop. The real registry keeps goroutines of its own that are
// not ours to stop (upstreamtest.LeakOptions names them).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
