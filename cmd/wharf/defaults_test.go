package main

import (
	"testing"

	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/prefetch"
)

// TestConfigDefaultsAreThePackages: the config's defaults for prefetch
// and segmented fetch are the ones the packages document (config may not
// import them, so the numbers are written twice; this keeps them one).
func TestConfigDefaultsAreThePackages(t *testing.T) {
	u := config.Default().Upstream
	if u.PrefetchConcurrency != prefetch.DefaultConcurrency {
		t.Errorf("upstream.prefetchConcurrency defaults to %d, prefetch.DefaultConcurrency is %d", u.PrefetchConcurrency, prefetch.DefaultConcurrency)
	}
	if int64(u.SegmentThreshold) != fill.DefaultSegmentThreshold {
		t.Errorf("upstream.segmentThreshold defaults to %d, fill.DefaultSegmentThreshold is %d", u.SegmentThreshold, fill.DefaultSegmentThreshold)
	}
	if u.Segments != fill.DefaultSegments {
		t.Errorf("upstream.segments defaults to %d, fill.DefaultSegments is %d", u.Segments, fill.DefaultSegments)
	}
}
