package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
)

// redacted is what every printing path shows instead of a Secret's value.
const redacted = "[redacted]"

// Secret is a string that refuses to be printed. fmt (every verb, %#v
// included), JSON (so logrus's JSONFormatter), YAML, encoding.TextMarshaler
// users and slog all see "[redacted]", or "" when the secret is empty so an
// unset password is still visible as unset. Value returns the real string;
// call it only where the secret is used, never to log it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" when s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter, which fmt consults before String and
// GoString for every verb, so even %x or %q cannot reach the value.
func (s Secret) Format(f fmt.State, verb rune) {
	out := s.String()
	if verb == 'q' {
		out = strconv.Quote(out)
	}
	_, _ = f.Write([]byte(out))
}

// MarshalJSON redacts JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts YAML output.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText redacts output through encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
