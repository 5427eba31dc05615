package upstream_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...)
}
