package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The storm (issue 10): `wharf bench storm` drives many clients, pulling
// 20 images of mixed kinds, pushing and deleting, against bin/wharf run as
// a process with a --max-size a third of those images (eviction all the
// time) and an upstream that misbehaves on 5 % of requests in six ways.
// It must end with no unclean outcome (no wrong bytes accepted, every
// failure a v2 error or a cut transfer), `wharf verify` clean, no panic
// in the log, goroutines and descriptors back within 10 % of the idle
// baseline, and a peak RSS of at most 256 MiB.
//
// `make test` runs the short storm (100 clients, 10 s); `make soak` the
// full one (SOAK_CLIENTS=1000, SOAK_DURATION=60s). SOAK_SEED seeds the
// faults and the pushed layers.
const (
	stormFaultRate = 0.05
	stormMaxRSS    = 256 << 20
	// stormFillStall is wharf's fill stall timeout (cache/fill's default,
	// not configurable): a stalled blob body outlasts it.
	stormFillStall = 30 * time.Second
	// stormHeaderTimeout is wharf's --upstream-timeout: a held-back
	// response outlasts it.
	stormHeaderTimeout = 5 * time.Second
)

func TestStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wharf as a process under load")
	}
	clients := stormEnvInt(t, "SOAK_CLIENTS", 100)
	duration := stormEnvDuration(t, "SOAK_DURATION", 10*time.Second)
	seed := uint64(stormEnvInt(t, "SOAK_SEED", 10))
	started := time.Now()

	bin := buildWharf(t)
	reg := upstreamtest.NewRegistry(t)
	images, total := seedStormImages(t, reg)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.StopRecording()
	faults := upstreamtest.NewRandomFaults(seed, stormFaultRate,
		upstreamtest.UpstreamFaults(stormFillStall+5*time.Second, stormHeaderTimeout+2*time.Second))

	dir := t.TempDir()
	maxSize := total / 3
	w := startStormWharf(t, bin, dir, "--upstream", faulty.URL, "--max-size", strconv.FormatInt(maxSize, 10),
		"--deletes=true", "--tag-ttl", "2s", "--upstream-timeout", stormHeaderTimeout.String(), "--log-level", "warn")
	passFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passFile, []byte(w.password), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := []string{"--registry", w.URL, "--username", w.user, "--password-file", passFile}

	// Warm up without faults, so that the baseline is of a wharf that has
	// served (its upstream connection pool open), then measure it idle.
	if out, err := stormBench(t, bin, 2*time.Minute, append(append([]string{"pull", "--clients", "4", "--pulls", "20"}, auth...), images...)); err != nil {
		t.Fatalf("warm-up pulls: %v\n%s", err, out)
	}
	base := w.waitIdle(t, nil, time.Minute)

	faulty.SetFault(faults.Fault)
	args := append([]string{"storm", "--json", "--clients", strconv.Itoa(clients), "--duration", duration.String(),
		"--push-repo", "storm/pushed", "--push-every", "5", "--delete-every", "5", "--push-layer-size", "4KiB",
		"--hang-after", (3 * stormFillStall).String(), "--seed", strconv.FormatUint(seed, 10)}, auth...)
	stormStart := time.Now()
	out, benchErr := stormBench(t, bin, duration+10*time.Minute, append(args, images...))
	stormTook := time.Since(stormStart)
	var res stormReport
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("storm: %v; output not JSON: %v\n%s", benchErr, err, out)
	}

	after := w.waitIdle(t, &base, 2*time.Minute)
	rss := w.peakRSS(t)
	m, err := w.metrics("wharf_cache_evictions_total")
	if err != nil {
		t.Fatal(err)
	}
	w.stop(t)
	verifyOut, verifyErr := exec.Command(bin, "verify", "--data", dir).CombinedOutput()
	panics := w.panics(t)
	upstreamRequests, injected := faults.Counts()

	t.Logf("storm figures (%d clients, %s, seed %d; max-size %s of %s in 20 images):\n%s", clients, duration, seed,
		stormHuman(maxSize), stormHuman(total), stormTable(res, stormTook, upstreamRequests, injected, m["wharf_cache_evictions_total"],
			base, after, rss, verifyOut, time.Since(started)))

	if res.Unclean != 0 || res.Outcomes["wrong_bytes"] != 0 {
		t.Errorf("%d unclean outcomes (%d wrong bytes): %v\nexamples: %v", res.Unclean, res.Outcomes["wrong_bytes"], res.OutcomeDetails, res.UncleanExamples)
	}
	for _, k := range []string{"pull", "push", "delete"} {
		if res.OpsByKind[k].Done == 0 {
			t.Errorf("no %s succeeded: %+v", k, res.OpsByKind)
		}
	}
	if stormSum(injected) == 0 || m["wharf_cache_evictions_total"] == 0 {
		t.Errorf("the storm was no storm: %v faults injected, %v evictions", injected, m["wharf_cache_evictions_total"])
	}
	if !within(after.goroutines, base.goroutines) || !within(after.fds, base.fds) {
		t.Errorf("after the storm: %v goroutines and %v descriptors, baseline %v and %v (10 %% allowed)",
			after.goroutines, after.fds, base.goroutines, base.fds)
	}
	if rss > stormMaxRSS {
		t.Errorf("peak RSS %s, limit %s", stormHuman(rss), stormHuman(stormMaxRSS))
	}
	if verifyErr != nil || !bytes.Contains(verifyOut, []byte(" 0 corrupt")) {
		t.Errorf("wharf verify: %v\n%s", verifyErr, verifyOut)
	}
	if len(panics) > 0 {
		t.Errorf("%d panics in wharf's log, first: %s", len(panics), panics[0])
	}
}

// stormReport is the part of `wharf bench storm --json` the test reads.
type stormReport struct {
	Seconds   float64 `json:"elapsed_seconds"`
	Requests  int64   `json:"requests"`
	Bytes     int64   `json:"bytes"`
	OpsByKind map[string]struct {
		Done   int64 `json:"done"`
		Failed int64 `json:"failed"`
	} `json:"ops_by_kind"`
	Outcomes        map[string]int64  `json:"outcomes"`
	OutcomeDetails  map[string]int64  `json:"outcome_details"`
	Unclean         int64             `json:"unclean"`
	UncleanExamples map[string]string `json:"unclean_examples"`
	Latency         map[string]struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	} `json:"latency"`
}

// stormBench runs `wharf bench` and returns its standard output; its
// standard error is in the error.
func stormBench(t *testing.T, bin string, limit time.Duration, args []string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return out, nil
}

// stormTable writes the figures the issue asks for, one per line.
func stormTable(r stormReport, took time.Duration, upstreamRequests int, injected map[string]int, evictions float64,
	base, after idleFigures, rss int64, verify []byte, total time.Duration) string {
	var b strings.Builder
	row := func(k, format string, a ...any) { fmt.Fprintf(&b, "  %-22s "+format+"\n", append([]any{k}, a...)...) }
	row("storm", "%s (clients start no operation after the duration, then finish theirs)", took.Round(time.Millisecond))
	row("requests", "%d, %s moved", r.Requests, stormHuman(r.Bytes))
	for _, k := range slices.Sorted(maps.Keys(r.OpsByKind)) {
		row("ops "+k, "%d done, %d failed", r.OpsByKind[k].Done, r.OpsByKind[k].Failed)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Outcomes)) {
		row("outcome "+k, "%d", r.Outcomes[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.OutcomeDetails)) {
		row("  "+k, "%d", r.OutcomeDetails[k])
	}
	row("unclean", "%d (wrong bytes accepted: %d)", r.Unclean, r.Outcomes["wrong_bytes"])
	for _, k := range []string{"manifest", "blob", "storm"} {
		if l, ok := r.Latency[k]; ok {
			row("latency "+k, "p50 %.1f ms, p99 %.1f ms, max %.1f ms", l.P50, l.P99, l.Max)
		}
	}
	row("upstream requests", "%d, faults injected %d: %v", upstreamRequests, stormSum(injected), injected)
	row("evictions", "%.0f", evictions)
	row("goroutines", "%.0f idle before, %.0f after (settled in %s)", base.goroutines, after.goroutines, after.settled.Round(time.Millisecond))
	row("open fds", "%.0f idle before, %.0f after", base.fds, after.fds)
	row("peak RSS", "%s (VmHWM)", stormHuman(rss))
	row("wharf verify", "%s", strings.TrimSpace(string(verify)))
	row("test duration", "%s", total.Round(time.Second))
	return b.String()
}

func stormSum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func stormHuman(n int64) string { return humanize.IBytes(uint64(max(0, n))) }

func stormEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func stormEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return d
}
