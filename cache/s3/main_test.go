package s3_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// shared is the MinIO server the tests that leave it running share.
var shared s3test.Shared

// TestMain stops the shared server before looking for leaks: its
// connections' goroutines end with it.
func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
