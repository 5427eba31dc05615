package wharf_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules guards the architecture: data flows proxy → cache →
// upstream (and archive → cache), and only cmd/wharf knows everything.
func TestImportRules(t *testing.T) {
	const mod = "github.com/wharf-mirror/wharf/"
	// direct: only the package's own imports count (proxy uses cache's
	// types, which themselves sit on Badger); otherwise everything it pulls in.
	rules := []struct {
		pkg       string
		direct    bool
		forbidden []string
	}{
		{"upstream", false, []string{mod + "cache", mod + "proxy", mod + "config", "github.com/dgraph-io/badger", "github.com/gorilla/mux"}},
		{"upstream/transport", false, []string{mod + "cache", mod + "proxy", mod + "config", "github.com/dgraph-io/badger", "github.com/gorilla/mux"}},
		{"cache", false, []string{mod + "proxy", mod + "config", "github.com/gorilla/mux"}},
		{"proxy/...", true, []string{mod + "cache/", mod + "config", mod + "archive", "github.com/dgraph-io/badger"}},
		// archive sits beside proxy: on the store's types and interfaces of
		// its own, never on HTTP, configuration or what is under the store.
		{"archive", false, []string{mod + "proxy", mod + "config", "github.com/gorilla/mux"}},
		{"archive", true, []string{mod + "cache/index", mod + "cache/disk", mod + "cache/fill", mod + "upstream", "github.com/dgraph-io/badger"}},
		// oci is the vocabulary every layer shares: it sits on nothing of wharf's.
		{"oci", true, []string{mod}},
		{"metrics/...", false, []string{mod + "cache", mod + "proxy", mod + "upstream", mod + "config"}},
		{"config/...", false, []string{mod + "cache", mod + "proxy", mod + "upstream", mod + "metrics"}},
	}
	// Test helpers (upstreamtest, which runs a whole distribution registry)
	// are not part of the shipped graph; shipped packages are listed by name.
	for _, r := range rules {
		args := []string{"list", "-deps", "./" + r.pkg}
		if r.direct {
			args = []string{"list", "-f", `{{join .Imports "\n"}}`, "./" + r.pkg}
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
					t.Errorf("%s imports %s", r.pkg, dep)
				}
			}
		}
	}
}
