package upload

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if the sweeper outlives Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
