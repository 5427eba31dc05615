package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// harness starts processes and profile captures in goroutines).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
