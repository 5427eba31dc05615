package config

import (
	"flag"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ByteSize
		err  string // substring of the error; "" means success
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: "512KiB", want: 512 << 10},
		{in: "20GiB", want: 20 << 30},
		{in: "1.5GB", want: 1_500_000_000},
		{in: "100MB", want: 100_000_000},
		{in: "10M", want: 10 << 20},
		{in: "2G", want: 2 << 30},
		{in: "3T", want: 3 << 40},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "1kb", want: 1000},
		{in: "1KIB", want: 1024},
		{in: "1k", want: 1024},
		{in: "  20GiB  ", want: 20 << 30},
		{in: "20 GiB", want: 20 << 30},
		{in: "1.5KiB", want: 1536},
		{in: "0.5", want: 0}, // fractions of a byte round down
		{in: "1.0009KB", want: 1000},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: "9223372036854775807", want: 1<<63 - 1},

		{in: "", err: "is not a size"},
		{in: "   ", err: "is not a size"},
		{in: "20XB", err: `"20XB" is not a size (use e.g. 512MiB, 20GiB)`},
		{in: "GiB", err: "is not a size"},
		{in: "20GiBs", err: "is not a size"},
		{in: "20Gi", err: "is not a size"},
		{in: "20P", err: "is not a size"},
		{in: "1e9", err: "is not a size"},
		{in: "1/2", err: "is not a size"},
		{in: "1.2.3", err: "is not a size"},
		{in: ".", err: "is not a size"},
		{in: "+5", err: "is not a size"},
		{in: "0x10", err: "is not a size"},
		{in: "-1", err: `"-1" is negative`},
		{in: "-1GiB", err: "is negative"},
		{in: "9223372036854775808", err: "is too large"},
		{in: "8388608TiB", err: "is too large"},
		{in: "99999999999999999999999T", err: "is too large"},
		{in: strings.Repeat("9", 100), err: "is not a size"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseByteSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1024, "1KiB"},
		{1536, "1536"},
		{512 << 10, "512KiB"},
		{1 << 20, "1MiB"},
		{1536 << 20, "1536MiB"},
		{20 << 30, "20GiB"},
		{3 << 40, "3TiB"},
		{1 << 50, "1024TiB"},
		{100_000_000, "100000000"},
		{-5, "-5"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if tt.in < 0 {
			continue
		}
		back, err := ParseByteSize(tt.want)
		if err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want the round trip to give %d", tt.want, back, err, int64(tt.in))
		}
	}
}

func TestByteSizeFlagValue(t *testing.T) {
	t.Parallel()
	var b ByteSize
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.Var(&b, "size", "")
	if err := fs.Parse([]string{"--size", "2G"}); err != nil || b != 2<<30 {
		t.Fatalf("--size 2G: got %d, %v", b, err)
	}
	if err := fs.Parse([]string{"--size", "lots"}); err == nil || !strings.Contains(err.Error(), "is not a size") {
		t.Errorf("--size lots: err = %v, want a size error", err)
	}
	var u ByteSize
	if err := u.UnmarshalText([]byte("1MiB")); err != nil || u != 1<<20 {
		t.Errorf("UnmarshalText(1MiB) = %d, %v", u, err)
	}
}

func TestByteSizeYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		doc  string
		want ByteSize
		err  string
	}{
		{doc: "size: 20GiB", want: 20 << 30},
		{doc: "size: 1048576", want: 1 << 20},
		{doc: `size: "1.5GB"`, want: 1_500_000_000},
		{doc: "\nsize: 20XB", err: `line 2: "20XB" is not a size`},
		{doc: "size: [1, 2]", err: "line 1: a size must be a single value"},
	}
	for _, tt := range tests {
		var v struct {
			Size ByteSize `yaml:"size"`
		}
		err := yaml.Unmarshal([]byte(tt.doc), &v)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.doc, err, tt.err)
			}
			continue
		}
		if err != nil || v.Size != tt.want {
			t.Errorf("%q: got %d, %v; want %d", tt.doc, v.Size, err, tt.want)
		}
		out, err := yaml.Marshal(v)
		back := v
		back.Size = -1
		if err == nil {
			err = yaml.Unmarshal(out, &back)
		}
		if err != nil || back.Size != tt.want {
			t.Errorf("yaml round trip via %q = %d, %v; want %d", out, back.Size, err, tt.want)
		}
	}
}
