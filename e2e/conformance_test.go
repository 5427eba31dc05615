package e2e

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/writethrough"
)

// conformanceTool is the OCI distribution-spec conformance suite, a tool
// dependency in go.mod (so its version is pinned and go.sum checks it).
const conformanceTool = "github.com/opencontainers/distribution-spec/conformance"

// TestOCIConformance runs the OCI distribution-spec conformance suite
// three ways, each against its own real distribution registry, with pull,
// push, content discovery (tags list, referrers) and content management
// (deletes) all on and every optional API and data set the suite knows
// enabled:
//
//   - against distribution directly, the reference;
//   - against a live wharf in front of it: 0 failures required;
//   - against a wharf with write-through to it, so pushes and deletes
//     reach the registry: it must fail nothing the registry itself passes
//     (a tag or manifest deleted through wharf must not come back from the
//     upstream, which still has it until the queued delete runs).
//
// `make conformance` runs this test alone.
func TestOCIConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the conformance suite")
	}
	bin := filepath.Join(t.TempDir(), "conformance")
	build := exec.Command("go", "build", "-o", bin, conformanceTool)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the conformance suite: %v\n%s", err, out)
	}

	direct := runConformance(t, bin, upstreamtest.NewRegistry(t).Host)

	t.Run("wharf", func(t *testing.T) {
		w := startPusher(t, upstreamtest.NewRegistry(t).URL, pushOpts{})
		r := runConformance(t, bin, w.Host)
		if !r.passed || r.counts["FAIL"]+r.counts["Error"]+r.counts["Skip"] != 0 || r.counts["Pass"] == 0 {
			t.Errorf("conformance suite: counts %v\n%s", r.counts, r.out)
		}
	})

	t.Run("wharf with write-through", func(t *testing.T) {
		w := startPusher(t, upstreamtest.NewRegistry(t).URL, pushOpts{
			writeThrough: &writethrough.Options{Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		})
		r := runConformance(t, bin, w.Host)
		var lost []string
		for name, status := range direct.cases {
			// A check the registry's own answers made the suite skip
			// (distribution has no ?tag=, so the suite pushes by tag as
			// well) is absent, not failed.
			if got, ran := r.cases[name]; status == "passed" && ran && got != "passed" {
				lost = append(lost, name+" ("+got+")")
			}
		}
		sort.Strings(lost)
		if len(lost) > 0 || r.counts["Pass"] < direct.counts["Pass"] {
			t.Errorf("%d checks distribution passes fail through wharf with write-through (counts %v, direct %v):\n%q",
				len(lost), r.counts, direct.counts, lost)
		}
		waitFor(t, "an empty write-through queue", func() bool {
			return testutil.ToFloat64(w.Metrics.WriteThroughPending) == 0
		})
		if n := testutil.ToFloat64(w.Metrics.WriteThroughFailures.WithLabelValues("missing")); n != 0 {
			t.Logf("%v queued pushes dropped (deleted before they reached the upstream)", n)
		}
	})
}

// conformanceRun is one run's outcome: the summary counts, the overall
// result, and each check's junit status ("passed", "failure", "error",
// "skipped") by name.
type conformanceRun struct {
	counts map[string]int
	cases  map[string]string
	passed bool
	out    string
}

// runConformance runs the suite against the registry at host.
func runConformance(t *testing.T, bin, host string) conformanceRun {
	t.Helper()
	dir := t.TempDir()
	results := filepath.Join(dir, "results")
	cmd := exec.Command(bin)
	cmd.Dir = dir // no oci-conformance.yaml there: the environment is the config
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+host,
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
	r := conformanceRun{counts: conformanceCounts(out.Bytes()), out: out.String()}
	result := resultLine.FindSubmatch(out.Bytes())
	r.passed = runErr == nil && result != nil && string(result[1]) == "Pass"
	t.Logf("conformance against %s: %v", host, r.counts)
	junit, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("conformance against %s wrote no junit.xml: %v\n%s", host, err, r.out)
	}
	if prefix := os.Getenv("WHARF_CONFORMANCE_OUT"); prefix != "" { // for a look at a failing run
		prefix += strings.ReplaceAll(t.Name(), "/", "-")
		os.WriteFile(prefix+".txt", out.Bytes(), 0o644)
		os.WriteFile(prefix+".junit.xml", junit, 0o644)
	}
	if r.cases, err = junitCases(junit); err != nil {
		t.Fatal(err)
	}
	return r
}

// junitCases reads each check's status from the suite's junit.xml. A
// check is several test cases of one name (one per assertion); its status
// is the worst of theirs.
func junitCases(b []byte) (map[string]string, error) {
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Status    string `xml:"status,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			name := c.Classname + " / " + c.Name
			if prev, ok := out[name]; !ok || prev == "passed" || c.Status == "failure" || c.Status == "error" {
				out[name] = c.Status
			}
		}
	}
	return out, nil
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
