package upload

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// minio is the MinIO server the shared sessions' tests share.
var minio s3test.Shared

// TestMain fails the package's tests if the sweeper outlives Close. It
// stops the shared server first: its connections' goroutines end with it.
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
