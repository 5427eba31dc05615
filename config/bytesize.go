package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes, written as a number with an optional unit:
// "0", "1048576", "512KiB", "20GiB", "1.5GB", "100MB", "10M", "2G".
//
// KiB/MiB/GiB/TiB are powers of 1024 and KB/MB/GB/TB powers of 1000, as the
// IEC and SI say; a bare K/M/G/T is taken as binary because that is what
// people mean when they write "20G" for a disk. Units are case-insensitive,
// spaces around the value or before the unit are allowed, fractions are
// rounded down to whole bytes, and negative or overflowing values are
// errors.
type ByteSize int64

// maxSizeInput bounds the text parsed, so big.Rat never chews on a
// megabyte of digits.
const maxSizeInput = 64

// ParseByteSize parses a size such as "20GiB"; see ByteSize for the syntax.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("%q is negative", s)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := unitBytes(strings.ToLower(unit))
	if !ok || !isDecimal(num) || len(t) > maxSizeInput {
		return 0, fmt.Errorf("%q is not a size (use e.g. 512MiB, 20GiB)", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a size (use e.g. 512MiB, 20GiB)", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n.Int64()), nil
}

// isDecimal reports whether s is digits with at most one '.', and at least
// one digit. It keeps out what big.Rat would otherwise accept ("1e9", "1/2").
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// unitBytes maps a lower-cased unit to its multiplier.
func unitBytes(u string) (int64, bool) {
	if u == "" || u == "b" {
		return 1, true
	}
	var pow int
	switch u[0] {
	case 'k':
		pow = 1
	case 'm':
		pow = 2
	case 'g':
		pow = 3
	case 't':
		pow = 4
	default:
		return 0, false
	}
	var base int64
	switch u[1:] {
	case "", "ib":
		base = 1024
	case "b":
		base = 1000
	default:
		return 0, false
	}
	m := int64(1)
	for range pow {
		m *= base
	}
	return m, true
}

// String formats b in the largest binary unit that divides it exactly
// ("20GiB", "1536" for 1.5KiB), so it always parses back to b.
func (b ByteSize) String() string {
	units := []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	if b > 0 {
		for _, u := range units {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler (and so YAML and JSON
// output) with String's form.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error { return b.Set(string(text)) }

// UnmarshalYAML implements yaml.Unmarshaler for a scalar, so a plain YAML
// integer is read as bytes and "20GiB" needs no quotes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a single value, like 20GiB", n.Line)
	}
	if err := b.Set(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
