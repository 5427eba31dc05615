package tier_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain stops the MinIO server before looking for leaks: the
// goroutines of the connections to it end with it.
func TestMain(m *testing.M) {
	code := m.Run()
	minio.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
