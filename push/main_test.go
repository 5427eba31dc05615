package push

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// Writer's upload sessions run a sweeper, and the Cache under it its
// evictor and fills; each must stop when it is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
