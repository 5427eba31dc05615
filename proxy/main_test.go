package proxy

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// handlers stream fills and serve files, and must leave nothing running
// once a request is answered.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
