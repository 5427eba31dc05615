package wharf_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/wharf-mirror/wharf"

// allowed is the architecture: for every package of the module, the
// module's packages it may import directly. Data flows proxy → cache →
// upstream; only cmd/wharf knows everything. A new package fails the test
// until it has a row, so where it sits in the graph is a decision, not an
// accident.
var allowed = map[string][]string{
	"cmd/wharf":                {"archive", "cache", "cache/disk", "cache/s3", "cache/tier", "cache/upload", "cluster", "cmd/wharf/internal/bench", "config", "inspect", "lease", "metrics", "oci", "peer", "prefetch", "proxy", "push", "statuspage", "upstream", "warm", "writethrough"},
	"cmd/wharf/internal/bench": {"oci", "upstream/transport"},
	"config":                   {},
	"proxy":                    {"cache", "metrics", "oci", "push", "statuspage", "upstream", "upstream/transport"},
	// The status page sits beside proxy, which mounts it: on metrics by
	// name, the store's types, du's numbers (inspect) and the breakers'
	// state; never on proxy.
	"statuspage": {"cache", "inspect", "metrics", "upstream/transport"},
	"archive":    {"cache", "oci"},
	// The write path sits on the cache and changes it through cache's
	// write seam; it names write-through jobs by the queue's op codes
	// (cache/index), and opens upload sessions the cache sets up.
	"push": {"cache", "cache/index", "cache/upload", "oci"},
	// The operator's tools read the store through interfaces of their
	// own; only the commands (and the status page, for du's numbers) use
	// them, and never the serving stack.
	"inspect": {"cache", "oci"},
	"warm":    {"archive", "cache", "oci"},
	// Prefetch starts fills through the cache (Cache.Prefetch, never its
	// fill package), for proxy (which knows it as an interface); it asks
	// upstreams through an interface of its own.
	"prefetch": {"cache", "metrics", "oci"},
	// Write-through reads the store and writes to the upstream; the write
	// path (push) knows it only as an interface.
	"writethrough": {"cache", "cache/index", "cache/records", "metrics", "oci", "upstream"},
	"cache":        {"cache/disk", "cache/evict", "cache/fill", "cache/index", "cache/records", "cache/upload", "metrics", "oci", "upstream"},
	"cache/disk":   {},
	"cache/evict":  {},
	"cache/fill":   {"metrics", "oci"},
	"cache/index":  {},
	"cache/s3":     {"cache/records", "metrics"},
	// The records replicas share, and their conditional writes: a seam
	// on nothing, implemented by cache/s3, consumed by what keeps records.
	"cache/records": {},
	// One replica at a time for a job, by the records' conditional writes.
	"lease":        {"cache/records"},
	"cache/tier":   {"cache/disk", "metrics", "oci"},
	"cache/upload": {"cache/index", "cache/records", "metrics"},
	// Replicas as each other's origins: an Origin over cluster's ranking,
	// and the peer listener's handler over the cache's read path.
	"peer":               {"cache", "cluster", "metrics", "oci", "upstream"},
	"cluster":            {}, // replicas, their health, a key's owner: below the cache's peer origin, on nothing of wharf's
	"upstream":           {"metrics", "oci", "upstream/transport"},
	"upstream/transport": {"metrics"},
	// The vocabulary every layer shares; it imports nothing of wharf's.
	"oci":     {},
	"metrics": {},

	// Test support and harnesses: not part of the shipped binary.
	".":                         {},
	"cache/storetest":           {"cache"},
	"cache/s3/s3test":           {"cache/s3"},
	"statuspage/statuspagetest": {},
	"upstream/upstreamtest":     {},
	"e2e":                       {},
	"deploy/helm":               {},
	"bench/baseline":            {},
	"bench/harness":             {"haproxytest"},
	"haproxytest":               {},
	"bench/relay":               {},
}

// onlyIn keeps a library behind the one package that wraps it (and the
// test support beside it).
var onlyIn = map[string][]string{
	"github.com/dgraph-io/badger": {"cache/index"},                 // the index's keys are drawn in one place
	"github.com/gorilla/mux":      {"proxy"},                       // the one route table
	"github.com/minio/minio-go":   {"cache/s3", "cache/s3/s3test"}, // S3 is spoken in one place; its tests' server beside it
	// The Kubernetes types check the Helm chart's output, in deploy/helm's
	// tests only: no package of wharf's (so not its binary) imports them.
	"k8s.io/api":          {"deploy/helm"},
	"k8s.io/apimachinery": {"deploy/helm"},
	"github.com/prometheus-operator/prometheus-operator": {"deploy/helm"},
}

// TestImportRules checks every package's direct imports (not its tests')
// against allowed and onlyIn.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports ","}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		pkg := strings.TrimPrefix(strings.TrimPrefix(path, mod), "/")
		if pkg == "" {
			pkg = "."
		}
		seen[pkg] = true
		may, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no row in allowed: say which of the module's packages it may import", pkg)
			continue
		}
		for _, imp := range strings.Split(imports, ",") {
			if dep, ours := strings.CutPrefix(imp, mod+"/"); ours && !slices.Contains(may, dep) {
				t.Errorf("%s imports %s, which its row in allowed does not list", pkg, dep)
			}
			for lib, owners := range onlyIn {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !slices.Contains(owners, pkg) {
					t.Errorf("%s imports %s; only %s may", pkg, imp, strings.Join(owners, ", "))
				}
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("allowed has a row for %s, which is no package of the module", pkg)
		}
	}
}
