package oci

import (
	"regexp"

	"github.com/distribution/reference"
)

// anchoredTag is the reference grammar's tag, whole: [A-Za-z0-9_] then up
// to 127 of [A-Za-z0-9_.-].
var anchoredTag = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)

// ValidTag reports whether tag is a tag by the reference grammar: what a
// push, an import and the router accept as a tag.
func ValidTag(tag string) bool { return anchoredTag.MatchString(tag) }
