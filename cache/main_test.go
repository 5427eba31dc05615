package cache

import (
	"testing"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// minio is the MinIO server the tests of replicas on one bucket share,
// started by the first of them; TestMain stops it.
var minio s3test.Shared

// TestMain fails the package's tests if any goroutine outlives them: the
// store starts its evictor, its fills and detached upstream calls, and
// each must stop when it is closed. The shared MinIO server stops first:
// its connections' goroutines end with it. The benchmarks' real registry
// keeps goroutines of its own that are not ours to stop
// (upstreamtest.LeakOptions names them).
func TestMain(m *testing.M) { minio.Main(m, upstreamtest.LeakOptions()...) }
