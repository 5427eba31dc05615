package inspect_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: the
// stores they open start an evictor and an access-log writer, which
// Close must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
