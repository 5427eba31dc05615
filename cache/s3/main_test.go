package s3_test

import (
	"testing"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// shared is the MinIO server the tests that leave it running share.
var shared s3test.Shared

func TestMain(m *testing.M) { shared.Main(m) }
