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
