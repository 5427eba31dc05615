package warm_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if a goroutine outlives them: Image
// fetches an image's blobs from goroutines of its own, which must all have
// ended when it returns, and the stores the tests open must stop theirs on
// Close. The real registry keeps goroutines of its own that are not ours
// to stop (upstreamtest.LeakOptions names them).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }
