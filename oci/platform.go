package oci

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform reads "os/arch[/variant]" with containerd's parser, which
// normalises what it reads (x86_64 is amd64, aarch64 is arm64, upper case
// is lower). Unlike containerd, a lone "linux" or "arm64" is refused: a
// platform given to warm or export names what the store should hold, not
// the machine wharf happens to run on.
func ParsePlatform(s string) (ocispec.Platform, error) {
	if n := strings.Count(s, "/"); n < 1 || n > 2 {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant", s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant: %w", s, err)
	}
	return p, nil
}

// MatchPlatform reports whether p, an index entry's platform, is one of
// want (every entry matches when want is empty; an entry without a
// platform matches only then). The comparison is containerd's, on
// normalised platforms, so arm64/v8 is arm64 and arm is arm/v7; one rule
// is wharf's own: a wanted platform without a variant takes every variant
// of its architecture ("linux/arm" warms arm/v6 and arm/v7 alike).
func MatchPlatform(p *ocispec.Platform, want []ocispec.Platform) bool {
	if len(want) == 0 {
		return true
	}
	if p == nil {
		return false
	}
	for _, w := range want {
		if w.Variant == "" {
			// Cleared on both sides, the variant normalises to the
			// architecture's default on both: only OS and arch decide.
			w, q := platforms.Normalize(w), platforms.Normalize(*p)
			w.Variant, q.Variant = "", ""
			if platforms.NewMatcher(w).Match(q) {
				return true
			}
			continue
		}
		if platforms.NewMatcher(w).Match(*p) {
			return true
		}
	}
	return false
}

// FormatPlatforms writes platforms as a comma-separated list, for messages.
func FormatPlatforms(ps []ocispec.Platform) string {
	if len(ps) == 0 {
		return "any platform"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = platforms.Format(p)
	}
	return strings.Join(s, ",")
}
