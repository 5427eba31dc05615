package bench

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// Clients start goroutines (progress, transports); each run must leave
// none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...)
}
