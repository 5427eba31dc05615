package peer

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the tests if a goroutine outlives them: the peer
// listeners, the clusters' loops and the caches' fills each have a stop
// path. The shared MinIO server stops first: its connections' goroutines
// end with it. The registry's own goroutines are named by LeakOptions.
func TestMain(m *testing.M) {
	code := m.Run()
	minio.Stop()
	if code == 0 {
		if err := goleak.Find(upstreamtest.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
