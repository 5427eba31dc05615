package prefetch_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if a goroutine outlives them: the
// workers must all have ended when Close returns, and the wharfs the
// tests build close their clients' idle connections. The real registry
// keeps goroutines of its own (upstreamtest.LeakOptions names them).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
