package push

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// Writer's upload sessions run a sweeper, and the Cache under it its
// evictor and fills; each must stop when it is closed. The shared MinIO
// server stops first: its connections' goroutines end with it; the
// in-process registry keeps goroutines of its own
// (upstreamtest.LeakOptions).
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
