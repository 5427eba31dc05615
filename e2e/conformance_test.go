package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// conformanceTool is the OCI distribution-spec conformance suite, a tool
// dependency in go.mod (so its version is pinned and go.sum checks it).
const conformanceTool = "github.com/opencontainers/distribution-spec/conformance"

// TestOCIConformance runs the OCI distribution-spec conformance suite
// against a live wharf with pull, push, content discovery (tags list,
// referrers) and content management (deletes) all on, every optional
// API and data set the suite knows enabled, and requires 0 failures.
// A real distribution registry is the upstream, so misses behave as in
// production. `make conformance` runs this test alone.
func TestOCIConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance suite")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "conformance")
	build := exec.Command("go", "build", "-o", bin, conformanceTool)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the conformance suite: %v\n%s", err, out)
	}

	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})

	results := filepath.Join(dir, "results")
	cmd := exec.Command(bin)
	cmd.Dir = dir // no oci-conformance.yaml there: the environment is the config
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+w.Host,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+results,
		"OCI_VERSION=1.1",
		"OCI_LOG=warn",
		// Everything wharf does, beyond the suite's defaults:
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	counts := conformanceCounts(out.Bytes())
	t.Logf("conformance: %v", counts)
	if os.Getenv("WHARF_CONFORMANCE_OUT") != "" {
		os.WriteFile(os.Getenv("WHARF_CONFORMANCE_OUT"), out.Bytes(), 0o644)
	}
	result := resultLine.FindSubmatch(out.Bytes())
	if runErr != nil || result == nil || string(result[1]) != "Pass" ||
		counts["FAIL"]+counts["Error"]+counts["Skip"] != 0 || counts["Pass"] == 0 {
		t.Errorf("conformance suite: %v, counts %v\n%s", runErr, counts, out.String())
		if html, err := os.ReadFile(filepath.Join(results, "report.html")); err == nil && os.Getenv("WHARF_CONFORMANCE_REPORT") != "" {
			os.WriteFile(os.Getenv("WHARF_CONFORMANCE_REPORT"), html, 0o644)
		}
	}
}

var resultLine = regexp.MustCompile(`(?m)^OCI Conformance Result: (\S+)`)

var countLine = regexp.MustCompile(`(?m)^\s+([A-Za-z][A-Za-z ]*?)\.+:\s+(\d+)\s*$`)

// conformanceCounts reads the summary ("  Pass......: 123") of a run.
func conformanceCounts(out []byte) map[string]int {
	counts := map[string]int{}
	for _, m := range countLine.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		if _, seen := counts[string(m[1])]; !seen {
			counts[string(m[1])] = n
		}
	}
	return counts
}
