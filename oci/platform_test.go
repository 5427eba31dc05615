package oci

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	good := map[string]ocispec.Platform{
		"linux/amd64":    {OS: "linux", Architecture: "amd64"},
		"linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
		"linux/arm/v6":   {OS: "linux", Architecture: "arm", Variant: "v6"},
		"linux/x86_64":   {OS: "linux", Architecture: "amd64"},
		"Linux/AMD64":    {OS: "linux", Architecture: "amd64"},
		"windows/amd64":  {OS: "windows", Architecture: "amd64"},
	}
	for s, want := range good {
		p, err := ParsePlatform(s)
		if err != nil || p.OS != want.OS || p.Architecture != want.Architecture || p.Variant != want.Variant {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", s, p, err, want)
		}
	}
	for _, bad := range []string{"", "linux", "arm64", "/amd64", "linux/", "a/b/c/d", "linux/*", "linux/am d64"} {
		if p, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) = %+v, want an error", bad, p)
		}
	}
}

// TestMatchPlatform pins which index entry a wanted platform takes: the
// rules warm, export --platform and the bench client share.
func TestMatchPlatform(t *testing.T) {
	plat := func(os, arch, variant string) *ocispec.Platform {
		return &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	cases := []struct {
		want  string // "" for no platform asked
		entry *ocispec.Platform
		match bool
	}{
		{"", nil, true},
		{"", plat("unknown", "unknown", ""), true},
		{"linux/amd64", nil, false},
		{"linux/amd64", plat("linux", "amd64", ""), true},
		{"linux/amd64", plat("linux", "amd64", "v3"), true}, // no variant asked: any
		{"linux/amd64", plat("linux", "arm64", ""), false},
		{"linux/amd64", plat("windows", "amd64", ""), false},
		{"linux/amd64", plat("unknown", "unknown", ""), false}, // attestations
		{"linux/arm64", plat("linux", "arm64", "v8"), true},
		{"linux/arm64/v8", plat("linux", "arm64", ""), true}, // v8 is arm64's default
		{"linux/arm64/v8", plat("linux", "arm64", "v8"), true},
		{"linux/arm/v7", plat("linux", "arm", "v7"), true},
		{"linux/arm/v7", plat("linux", "arm", ""), true}, // v7 is arm's default
		{"linux/arm/v6", plat("linux", "arm", "v7"), false},
		{"linux/arm", plat("linux", "arm", "v6"), true},
		{"linux/arm", plat("linux", "arm", "v7"), true},
	}
	for _, tc := range cases {
		var want []ocispec.Platform
		if tc.want != "" {
			p, err := ParsePlatform(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			want = []ocispec.Platform{p}
		}
		if got := MatchPlatform(tc.entry, want); got != tc.match {
			t.Errorf("MatchPlatform(%+v, %q) = %v, want %v", tc.entry, tc.want, got, tc.match)
		}
	}
	two := []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	if !MatchPlatform(plat("linux", "arm64", ""), two) || MatchPlatform(plat("linux", "s390x", ""), two) {
		t.Error("a list of platforms matches any one of them, and nothing else")
	}
	if got := FormatPlatforms(two); got != "linux/amd64,linux/arm64" {
		t.Errorf("FormatPlatforms = %q", got)
	}
	if got := FormatPlatforms(nil); got != "any platform" {
		t.Errorf("FormatPlatforms(nil) = %q", got)
	}
}
