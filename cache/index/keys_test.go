package index

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// prefixes is every key family of the schema in doc.go.
var prefixes = map[string]string{
	"blob": prefixBlob, "tag": prefixTag, "repo": prefixRepo, "local": prefixLocal,
	"access": prefixAccess, "stats": prefixStats, "link": prefixLink, "held": prefixHeld,
	"version": linksVersionKey, "upload": prefixUpload, "referrer": prefixReferrer, "queue": prefixQueue,
}

// TestKeyFamiliesAreApart: every listing is a prefix scan, so no family's
// prefix may begin another's, or one scan would read the other's keys.
func TestKeyFamiliesAreApart(t *testing.T) {
	for a, pa := range prefixes {
		for b, pb := range prefixes {
			if a != b && strings.HasPrefix(pb, pa) {
				t.Errorf("%s keys (%q) begin with %s's prefix (%q)", b, pb, a, pa)
			}
		}
	}
}

// TestKeySchemaIsDrawn: doc.go draws every key family, so whoever reads
// the package doc sees the whole database.
func TestKeySchemaIsDrawn(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range prefixes {
		if !bytes.Contains(doc, []byte("//\t"+p)) {
			t.Errorf("the %s family (%q) is not drawn in doc.go's key schema", name, p)
		}
	}
}

// TestScansStayInside: a repository's (or a tag's) scan
// prefix holds its own keys and none of a neighbour whose name extends
// or is extended by it: the separator closes each name.
func TestScansStayInside(t *testing.T) {
	d := digest.FromString("subject")
	e := digest.FromString("referrer")
	const repo = "docker.io/library/alpine"
	neighbours := []string{repo + "/sub", repo + "x", repo + "-x", "docker.io/library/alpin", "docker.io/library"}
	tests := []struct {
		name   string
		prefix func(repo string) []byte
		key    func(repo string) []byte
	}{
		{"tags", tagPrefix, func(r string) []byte { return tagKey(r, "latest", "") }},
		{"local tags", localTagPrefix, func(r string) []byte { return localTagKey(r, "latest") }},
		{"referrers", func(r string) []byte { return referrerPrefix(r, d) }, func(r string) []byte { return referrerKey(r, d, e) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if own := tt.key(repo); !bytes.HasPrefix(own, tt.prefix(repo)) {
				t.Errorf("own key %q is outside the scan %q", own, tt.prefix(repo))
			}
			for _, n := range neighbours {
				if k := tt.key(n); bytes.HasPrefix(k, tt.prefix(repo)) {
					t.Errorf("scan %q reads %q's key %q", tt.prefix(repo), n, k)
				}
			}
		})
	}
	// A tag prefixes another tag, so a tag's own scan needs the
	// separator after it as much as a repository's does.
	if k := tagKey(repo, "v1.2", ""); bytes.HasPrefix(k, append(tagPrefix(repo), "v1"+sep...)) {
		t.Errorf("v1's scan reads v1.2's key %q", k)
	}
}
