package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: " 250ms ", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "-5m", want: -5 * time.Minute}, // parses; Validate decides
		{in: "300", err: `"300" has no unit`},
		{in: "-3", err: "has no unit"},
		{in: "", err: "is not a duration"},
		{in: "5 minutes", err: "is not a duration"},
		{in: "1d", err: "is not a duration"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.Std() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{250 * time.Millisecond, "250ms"},
	}
	for _, tt := range tests {
		d := Duration(tt.in)
		if got := d.String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("round trip of %v: got %v, %v", tt.in, back, err)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	t.Parallel()
	var v struct {
		TTL Duration `yaml:"ttl"`
	}
	if err := yaml.Unmarshal([]byte("ttl: 1h30m"), &v); err != nil || v.TTL.Std() != 90*time.Minute {
		t.Errorf("ttl: 1h30m: got %v, %v", v.TTL, err)
	}
	err := yaml.Unmarshal([]byte("ttl: 300"), &v)
	if err == nil || !strings.Contains(err.Error(), `line 1: "300" has no unit`) {
		t.Errorf("ttl: 300: err = %v, want a no-unit error with its line", err)
	}
}
