package upload

import (
	"testing"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// minio is the MinIO server the shared sessions' tests share.
var minio s3test.Shared

// TestMain fails the package's tests if the sweeper outlives Close,
// after stopping the shared server (its connections end with it).
func TestMain(m *testing.M) { minio.Main(m) }
