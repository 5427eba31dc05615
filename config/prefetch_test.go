package config

import (
	"strings"
	"testing"
)

// TestPrefetchSettings reads prefetch's switch (on unless set false) and
// its concurrency from each layer, and refuses a concurrency out of range
// whichever layer set it.
func TestPrefetchSettings(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "upstream:\n  prefetch: false\n  prefetchConcurrency: 4\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		on   bool
		n    int
	}{
		{"defaults", nil, nil, true, 8},
		{"flags", []string{"--prefetch=false", "--prefetch-concurrency", "16"}, nil, false, 16},
		{"env", nil, map[string]string{"WHARF_PREFETCH": "false", "WHARF_PREFETCH_CONCURRENCY": "2"}, false, 2},
		{"file", []string{"--config", file}, nil, false, 4},
		{"flag over file", []string{"--config", file, "--prefetch"}, nil, true, 4},
	}
	for _, tt := range tests {
		cfg, err := Load(tt.args, env(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if on, n := cfg.Upstream.PrefetchOn(), cfg.Upstream.PrefetchConcurrency; on != tt.on || n != tt.n {
			t.Errorf("%s: prefetch %v, concurrency %d; want %v, %d", tt.name, on, n, tt.on, tt.n)
		}
	}
	_, err := Load(nil, env(map[string]string{"WHARF_PREFETCH_CONCURRENCY": "0"}))
	if err == nil || !strings.Contains(err.Error(), "upstream.prefetchConcurrency: 0 is outside 1..64") {
		t.Errorf("concurrency 0: %v, want a validation error naming upstream.prefetchConcurrency", err)
	}
}

// TestSegmentSettings reads the segmented fetch's threshold (a size; 0
// is off) and its ranges at once from flags, environment and file.
func TestSegmentSettings(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "upstream:\n  segmentThreshold: 0\n  segments: 2\n")
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		threshold ByteSize
		n         int
	}{
		{"defaults", nil, nil, 16 << 20, 4},
		{"flags", []string{"--upstream-segment-threshold", "32MiB", "--upstream-segments", "8"}, nil, 32 << 20, 8},
		{"env", nil, map[string]string{"WHARF_UPSTREAM_SEGMENT_THRESHOLD": "1MiB", "WHARF_UPSTREAM_SEGMENTS": "1"}, 1 << 20, 1},
		{"file", []string{"--config", file}, nil, 0, 2},
	}
	for _, tt := range tests {
		cfg, err := Load(tt.args, env(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got, n := cfg.Upstream.SegmentThreshold, cfg.Upstream.Segments; got != tt.threshold || n != tt.n {
			t.Errorf("%s: threshold %v, segments %d; want %v, %d", tt.name, got, n, tt.threshold, tt.n)
		}
	}
}
