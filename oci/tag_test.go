package oci

import (
	"strings"
	"testing"
)

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"latest": true, "v1.2.3": true, "_x": true, "3.20-alpine": true, "A_b.c-D": true,
		strings.Repeat("a", 128):            true,
		strings.Repeat("a", 129):            false,
		"":                                  false,
		".hidden":                           false,
		"-dash":                             false,
		"a:b":                               false,
		"a/b":                               false,
		"sha256:" + strings.Repeat("a", 64): false,
		"tag\n":                             false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
