package cluster_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them: a Cluster's loop
// and its checks must stop with Close, and its transport's connections
// with them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
