package config

import (
	"strings"
	"testing"
)

// TestOfflineSwitch reads the offline switch from each layer, and refuses
// it with write-through, which would queue pushes no upstream can take.
func TestOfflineSwitch(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "offline: true\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default off", nil, nil, false},
		{"flag", []string{"--offline"}, nil, true},
		{"flag false", []string{"--offline=false"}, map[string]string{"WHARF_OFFLINE": "true"}, false},
		{"env", nil, map[string]string{"WHARF_OFFLINE": "true"}, true},
		{"file", []string{"--config", file}, nil, true},
		{"env over file", []string{"--config", file}, map[string]string{"WHARF_OFFLINE": "false"}, false},
	}
	for _, tt := range tests {
		cfg, err := Load(tt.args, env(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := cfg.OfflineOn(); got != tt.want {
			t.Errorf("%s: OfflineOn() = %v, want %v", tt.name, got, tt.want)
		}
	}
	_, err := Load([]string{"--offline", "--write-through"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "offline: cannot be combined with upstream.writeThrough") {
		t.Errorf("offline with write-through: %v, want a validation error naming offline", err)
	}
}
