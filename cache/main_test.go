package cache

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// store starts its evictor, the upload sweeper and the write-through
// queue, and each must stop when the Cache is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
