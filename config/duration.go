package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written the Go way: "90s", "5m", "1h30m".
//
// A bare integer other than "0" is rejected rather than guessed at: "300"
// could mean seconds or nanoseconds, and guessing wrong turns a five-minute
// TTL into no cache at all.
type Duration time.Duration

// ParseDuration parses a Duration; see Duration for the syntax.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t != "0" && strings.Trim(t, "+-0123456789") == "" && t != "" {
		return 0, fmt.Errorf("%q has no unit (use e.g. 90s, 5m, 1h30m)", s)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 90s, 5m, 1h30m)", s)
	}
	return Duration(d), nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration without trailing zero units
// ("5m", not "5m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler (and so YAML and JSON
// output) with String's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error { return d.Set(string(text)) }

// UnmarshalYAML implements yaml.Unmarshaler for a scalar.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a single value, like 5m", n.Line)
	}
	if err := d.Set(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
