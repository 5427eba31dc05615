package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// median of one figure over the rounds; ok is false when it was not measured.
func (h *harness) median(scenario, target, metric string) (float64, bool) {
	var v []float64
	for _, s := range h.run.Samples {
		if s.Scenario == scenario && s.Target == target && s.Metric == metric {
			v = append(v, s.Value)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// spread is the smallest and largest sample of one figure, and how many
// there are.
func (h *harness) spread(scenario, target, metric string) (lo, hi float64, n int) {
	for _, s := range h.run.Samples {
		if s.Scenario != scenario || s.Target != target || s.Metric != metric {
			continue
		}
		if n == 0 || s.Value < lo {
			lo = s.Value
		}
		if n == 0 || s.Value > hi {
			hi = s.Value
		}
		n++
	}
	return lo, hi, n
}

func (h *harness) med(scenario, target, metric string) float64 {
	v, _ := h.median(scenario, target, metric)
	return v
}

// target is one of issue 7's targets: a measured ratio or figure and the
// bound it must stay within.
type target struct {
	what     string
	measured float64
	limit    float64
	atMost   bool   // measured ≤ limit, else ≥
	unit     string // "×", "s", "MiB"
	note     string
}

func (t target) met() bool {
	if t.atMost {
		return t.measured <= t.limit
	}
	return t.measured >= t.limit
}

func (t target) verdict() string {
	if t.met() {
		return "MET"
	}
	return "**NOT MET**"
}

func (t target) format(v float64) string {
	switch t.unit {
	case "×":
		return fmt.Sprintf("%.2f ×", v)
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "MiB":
		return fmt.Sprintf("%.0f MiB", v)
	case "requests":
		return fmt.Sprintf("%.0f requests", v)
	}
	return fmt.Sprintf("%.2f %s", v, t.unit)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// targets evaluates issue 7's targets on the medians.
func (h *harness) targets() []target {
	img := float64(h.run.AppBytes)
	cold := h.med(scCold, "wharf", "seconds")
	ts := []target{{
		what:     "Cold pull through wharf ÷ direct pull from the upstream, 200 MiB/s link",
		measured: ratio(cold, h.med(scCold, "direct", "seconds")), limit: 1.10, atMost: true, unit: "×",
	}}
	for _, n := range h.p.Concurrent {
		sc := coldN(n)
		ts = append(ts, target{
			what:     fmt.Sprintf("%d clients, same cold image: bytes from the upstream ÷ image size", n),
			measured: ratio(h.med(sc, "wharf", "upstream"), img), limit: 1.02, atMost: true, unit: "×",
		}, target{
			what:     fmt.Sprintf("%d clients, same cold image: wall time ÷ one client's cold pull", n),
			measured: ratio(h.med(sc, "wharf", "seconds"), cold), limit: 1.25, atMost: true, unit: "×",
			note: h.coldNote(n, cold),
		})
	}
	ts = append(ts,
		target{what: fmt.Sprintf("Cached %s blob: throughput ÷ static file server", size(h.p.BlobSize)),
			measured: ratio(h.med(scBlob, "wharf", "bytes_per_s"), h.med(scBlob, "baseline", "bytes_per_s")), limit: 0.9, unit: "×"},
		target{what: fmt.Sprintf("Cached %s blob: wharf's CPU-seconds per GiB sent", size(h.p.BlobSize)),
			measured: h.med(scBlob, "wharf", "cpu_per_gib"), limit: 0.5, atMost: true, unit: "s"},
		target{what: fmt.Sprintf("Manifests by digest, %d clients: wharf ÷ bare Go handler", h.p.HitClients),
			measured: ratio(h.med(scHitsDigest, "wharf", "req_per_s"), h.med(scHitsDigest, "baseline", "req_per_s")), limit: 0.5, unit: "×"},
		target{what: "Warm pull: wharf ÷ distribution (pulls/s)",
			measured: ratio(h.med(scWarm, "wharf", "bytes_per_s"), h.med(scWarm, "distribution", "bytes_per_s")), limit: 1.5, unit: "×",
			note: fmt.Sprintf("%.2f × with a client that does not hash", ratio(h.med(scWarmNV, "wharf", "bytes_per_s"), h.med(scWarmNV, "distribution", "bytes_per_s")))},
		target{what: "Manifests by digest: wharf ÷ distribution (requests/s)",
			measured: ratio(h.med(scHitsDigest, "wharf", "req_per_s"), h.med(scHitsDigest, "distribution", "req_per_s")), limit: 1.5, unit: "×"},
		target{what: "Manifests by tag: wharf ÷ distribution (requests/s)",
			measured: ratio(h.med(scHitsTag, "wharf", "req_per_s"), h.med(scHitsTag, "distribution", "req_per_s")), limit: 1.5, unit: "×"},
	)
	if n := slices.Max(h.p.Concurrent); n > 0 {
		ts = append(ts, target{what: fmt.Sprintf("Peak RSS of wharf, %d-client cold pull", n),
			measured: h.med(coldN(n), "wharf", "rss") / (1 << 20), limit: 128, atMost: true, unit: "MiB"})
	}
	return ts
}

// coldNote says what bounds n clients' cold pull: the CPU the load
// generator and wharf used in that wall time on this many cores, and how
// long the same pulls take from a warm wharf.
func (h *harness) coldNote(n int, cold float64) string {
	sc := coldN(n)
	wall := h.med(sc, "wharf", "seconds")
	return fmt.Sprintf("in %.2f s on %d cores (%.1f CPU-s in all) the %d clients used %.1f CPU-s and wharf %.1f; from a warm wharf the same %d pulls take %.2f ×",
		wall, runtime.NumCPU(), wall*float64(runtime.NumCPU()), n, h.med(sc, "wharf", "client_cpu"), h.med(sc, "wharf", "server_cpu"),
		n, ratio(h.med(warmN(n), "wharf", "seconds"), cold))
}

func (h *harness) report() error {
	var b strings.Builder
	p := h.p
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Generated by `%s` on %s in %s; do not edit by hand (bench/harness writes this file).\n\n",
		h.run.Command, h.run.Started.Format("2006-01-02 15:04 MST"), h.run.Took.Round(time.Second))
	fmt.Fprintf(&b, "Scale **%s**: %d round(s), medians reported. Image: an OCI index (linux/amd64, linux/arm64) whose amd64 image has %d random, incompressible layers of %s (%s pulled in all). Large blob: %s. Link to the upstream: %s/s, paced by a relay shared by all connections. Warm pulls: %d clients, manifest hits: %d clients, each in %d turns of %s per target and round, interleaved.\n\n",
		p.Scale, p.Rounds, p.Layers, size(p.LayerSize), size(h.run.AppBytes), size(p.BlobSize), size(p.Rate),
		p.WarmClients, p.HitClients, p.Slices, p.HitDuration)

	b.WriteString("## Machine\n\n")
	for _, l := range machine(h.run.Rev) {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n## Targets (issue 7)\n\n| Target | Measured | Required | |\n|---|---:|---:|---|\n")
	for _, t := range h.targets() {
		writeTargetRow(&b, t)
	}

	b.WriteString("\n## Results over the paced link (medians)\n\n")
	b.WriteString("The last two columns give the range over every round and turn, to show how noisy the machine was.\n\n")
	b.WriteString("| Scenario | Unit | Baseline | wharf | distribution | wharf ÷ distribution | wharf ÷ baseline | range: wharf | range: baseline |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(name, unit, sc, metric, base string, scale float64, digits int) {
		w, d, bs := h.med(sc, "wharf", metric)/scale, h.med(sc, "distribution", metric)/scale, 0.0
		baseCell, vsBase := "—", "—"
		if base != "" {
			if v, ok := h.median(sc, base, metric); ok {
				bs = v / scale
				baseCell = fmt.Sprintf("%.*f (%s)", digits, bs, map[string]string{"direct": "direct pull", "baseline": baselineName(sc)}[base])
				vsBase = fmt.Sprintf("%.2f", ratio(w, bs))
			}
		}
		spread := func(t string) string {
			lo, hi, n := h.spread(sc, t, metric)
			if n < 2 {
				return "—"
			}
			return fmt.Sprintf("%.*f–%.*f", digits, lo/scale, digits, hi/scale)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.*f | %.*f | %.2f | %s | %s | %s |\n", name, unit, baseCell, digits, w, digits, d, ratio(w, d), vsBase,
			spread("wharf"), spread(base))
	}
	row("Cold pull, 1 client", "s", scCold, "seconds", "direct", 1, 2)
	// Warm pulls per second are bytes per second over the bytes of one
	// pull: counting completed pulls in a turn of a few seconds would round
	// to whole pulls.
	pull := float64(h.run.AppBytes)
	row(fmt.Sprintf("Warm pull, %d clients", p.WarmClients), "pulls/s", scWarm, "bytes_per_s", "", pull, 2)
	row(fmt.Sprintf("Warm pull, %d clients", p.WarmClients), "MiB/s", scWarm, "bytes_per_s", "", 1<<20, 0)
	row(fmt.Sprintf("Warm pull, %d clients, client not hashing", p.WarmClients), "pulls/s", scWarmNV, "bytes_per_s", "", pull, 2)
	for _, n := range p.Concurrent {
		row(fmt.Sprintf("Cold pull, %d clients at once", n), "s", coldN(n), "seconds", "", 1, 2)
		row(fmt.Sprintf("Warm pull, %d clients at once", n), "s", warmN(n), "seconds", "", 1, 2)
	}
	row(fmt.Sprintf("Manifest by digest, %d clients", p.HitClients), "req/s", scHitsDigest, "req_per_s", "baseline", 1, 0)
	row(fmt.Sprintf("Manifest by tag, %d clients", p.HitClients), "req/s", scHitsTag, "req_per_s", "baseline", 1, 0)
	row(fmt.Sprintf("%s blob from cache, 1 client", size(p.BlobSize)), "MiB/s", scBlob, "bytes_per_s", "baseline", 1<<20, 0)
	row(fmt.Sprintf("%s blob from cache: server CPU", size(p.BlobSize)), "CPU-s/GiB", scBlob, "cpu_per_gib", "baseline", 1, 2)

	b.WriteString("\n## Bytes fetched from the upstream, peak RSS of the server\n\n")
	fmt.Fprintf(&b, "Bytes as counted by the relay (HTTP headers included), also as a multiple of what one pull moves (%s). Peak RSS is VmHWM from /proc/PID/status, reset before each warm scenario.\n\n", size(h.run.AppBytes))
	b.WriteString("| Scenario | upstream: wharf | upstream: distribution | peak RSS: wharf | peak RSS: distribution | peak RSS: baseline |\n|---|---:|---:|---:|---:|---:|\n")
	scen := []struct{ name, sc string }{{"Cold pull, 1 client", scCold}, {"Warm pull", scWarm}}
	for _, n := range p.Concurrent {
		scen = append(scen, struct{ name, sc string }{fmt.Sprintf("Cold pull, %d clients", n), coldN(n)},
			struct{ name, sc string }{fmt.Sprintf("Warm pull, %d clients", n), warmN(n)})
	}
	scen = append(scen, struct{ name, sc string }{"Manifest by digest", scHitsDigest}, struct{ name, sc string }{"Manifest by tag", scHitsTag},
		struct{ name, sc string }{size(p.BlobSize) + " blob", scBlob})
	for _, s := range scen {
		up := func(t string) string {
			v, ok := h.median(s.sc, t, "upstream")
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%s (%.2f ×)", size(int64(v)), v/float64(h.run.AppBytes))
		}
		rss := func(t string) string {
			v, ok := h.median(s.sc, t, "rss")
			if !ok {
				return "—"
			}
			return size(int64(v))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.name, up("wharf"), up("distribution"), rss("wharf"), rss("distribution"), rss("baseline"))
	}

	b.WriteString("\n## Where the CPU went in the cold pulls\n\n")
	fmt.Fprintf(&b, "CPU-seconds (user + system, medians) of the load generator and of the mirror during each cold pull, against the wall time; the machine has %d cores. A load generator near wall × cores means the machine, not the mirror, sets the pace.\n\n", runtime.NumCPU())
	b.WriteString("| Scenario | wall: wharf | CPU: clients | CPU: wharf | wall: distribution | CPU: clients | CPU: distribution |\n|---|---:|---:|---:|---:|---:|---:|\n")
	cpuRows := []string{scCold}
	for _, n := range p.Concurrent {
		cpuRows = append(cpuRows, coldN(n))
	}
	if p.Unthrottled {
		for _, sc := range slices.Clone(cpuRows) {
			cpuRows = append(cpuRows, unthrottled+sc)
		}
	}
	for _, sc := range cpuRows {
		name := coldName(sc)
		if strings.HasPrefix(sc, unthrottled) {
			name += ", unthrottled"
		}
		fmt.Fprintf(&b, "| %s | %.2f s | %.1f | %.1f | %.2f s | %.1f | %.1f |\n", name,
			h.med(sc, "wharf", "seconds"), h.med(sc, "wharf", "client_cpu"), h.med(sc, "wharf", "server_cpu"),
			h.med(sc, "distribution", "seconds"), h.med(sc, "distribution", "client_cpu"), h.med(sc, "distribution", "server_cpu"))
	}

	if p.Unthrottled {
		b.WriteString("\n## Unthrottled loopback (medians)\n\n")
		b.WriteString("With no pacing, the client, the upstream, the relay and the mirror share 2 cores: CPU decides, not the design.\n\n")
		b.WriteString("| Scenario | direct | wharf | distribution | wharf ÷ distribution | wharf ÷ direct | upstream: wharf | upstream: distribution | peak RSS: wharf | peak RSS: distribution |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		scs := []string{unthrottled + scCold}
		for _, n := range p.Concurrent {
			scs = append(scs, unthrottled+coldN(n))
		}
		for _, sc := range scs {
			dir, hasDir := h.median(sc, "direct", "seconds")
			w, d := h.med(sc, "wharf", "seconds"), h.med(sc, "distribution", "seconds")
			dirCell, vsDir := "—", "—"
			if hasDir {
				dirCell, vsDir = fmt.Sprintf("%.2f s", dir), fmt.Sprintf("%.2f", ratio(w, dir))
			}
			fmt.Fprintf(&b, "| %s | %s | %.2f s | %.2f s | %.2f | %s | %s | %s | %s | %s |\n", coldName(sc), dirCell, w, d, ratio(w, d), vsDir,
				size(int64(h.med(sc, "wharf", "upstream"))), size(int64(h.med(sc, "distribution", "upstream"))),
				size(int64(h.med(sc, "wharf", "rss"))), size(int64(h.med(sc, "distribution", "rss"))))
		}
	}

	h.wanReport(&b)
	h.clusterReport(&b)

	b.WriteString("\n## Chart\n\n![Cold pulls over the paced link, and serving from cache](benchmarks.svg)\n")

	if len(h.run.Profiles) > 0 {
		b.WriteString("\n## CPU profiles of wharf\n\nTaken with `--debug-listen` during a repeat of each scenario after the rounds; the top functions by own time, then by cumulative time (`go tool pprof -top [-cum]`). The profiles are in bench/out/. The profiler takes one sample per signal, and a thread inside one long sendfile(2) call gets one signal however long the call: profiles under-count time in sendfile, so for the blob trust the CPU-seconds per GiB above (from /proc), not the profile's total.\n")
		for _, pr := range h.run.Profiles {
			// Indented, not fenced: pprof's output is no example for
			// the docs check (e2e TestDocs) to run.
			fmt.Fprintf(&b, "\n### %s\n\n%s\n%s", pr.Scenario, indent(trimTop(pr.Top)), indent(trimTop(pr.Cum)))
		}
	}

	b.WriteString("\n## How it is measured\n\n")
	b.WriteString(method)
	b.WriteString("\n## Every round\n\n<details><summary>Raw figures</summary>\n\n| Scenario | Target | Round | Metric | Value |\n|---|---|---:|---|---:|\n")
	for _, s := range h.run.Samples {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.4g |\n", s.Scenario, s.Target, s.Round, s.Metric, s.Value)
	}
	b.WriteString("\n</details>\n")

	if err := os.MkdirAll(h.docs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.docs, "benchmarks.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.docs, "benchmarks.svg"), []byte(h.chart()), 0o644); err != nil {
		return err
	}
	h.logf("wrote %s", filepath.Join(h.docs, "benchmarks.md"))
	ts := h.targets()
	if h.p.Cluster {
		ts = append(ts, h.clusterTargets()...)
	}
	if h.p.WAN {
		ts = append(ts, h.wanTargets()...)
	}
	h.logTargets(ts)
	return nil
}

// logTargets prints each target's verdict and figure.
func (h *harness) logTargets(ts []target) {
	for _, t := range ts {
		h.logf("  %-10s %s: %s", strings.ReplaceAll(t.verdict(), "*", ""), t.what, t.format(t.measured))
	}
}

func baselineName(sc string) string {
	if sc == scBlob {
		return "static file server"
	}
	return "bare handler"
}

func coldName(sc string) string {
	sc = strings.TrimPrefix(sc, unthrottled)
	if sc == scCold {
		return "Cold pull, 1 client"
	}
	return "Cold pull, " + strings.TrimPrefix(sc, "cold") + " clients at once"
}

// trimTop keeps pprof's header and table, without the build-id noise.
func trimTop(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// machine describes where the run happened.
func machine(rev string) []string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = size(kb << 10)
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return []string{
		fmt.Sprintf("CPU: %s, %d logical cores; memory %s", cpu, runtime.NumCPU(), mem),
		fmt.Sprintf("Linux %s, %s", strings.TrimSpace(string(kernel)), runtime.Version()),
		fmt.Sprintf("wharf at %s; distribution %s (the registry binary, built from the Go module proxy)", rev, distributionVersion()),
		"A shared, noisy VM: figures are only compared within one run, taken side by side in alternating rounds",
	}
}

func distributionVersion() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/distribution/distribution/v3").Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}

const method = `- **Processes.** The upstream is the distribution registry (filesystem storage). Between it and everyone else sits
  bench/relay, a TCP relay that paces upstream-to-client bytes at one rate shared by all connections and counts them:
  that count is "bytes fetched from the upstream". wharf (` + "`--tag-ttl 1h --log-level warn`" + `) and distribution in proxy mode
  (access log off, in-memory blob descriptor cache) both mirror the upstream through the relay. Everything listens on 127.0.0.1.
- **Load.** Every figure comes from ` + "`wharf bench pull --json`" + `, run as its own process: per client, it resolves the tag with the
  docker daemon's Accept headers, follows the index to linux/amd64, fetches config and layers 3 at a time, verifies every
  digest and discards the bytes. The large-blob scenario passes ` + "`--no-verify`" + ` (sizes still checked) so that the
  client's SHA-256 is not what is measured; manifest scenarios pass ` + "`--manifests-only`" + `.
- **Cold** scenarios start the mirror on an empty data directory, pull with N clients at once (` + "`--clients N --pulls N`" + `),
  record the wall time, the relay's byte count, VmHWM and the CPU time of the mirror (/proc/PID/stat) and of the load
  generator, then stop the mirror and delete its data. The direct pull is the same command against the relay.
- **Warm** pulls, **hits** and the **large blob** use one long-lived instance of each mirror, filled before the rounds, and
  bench/baseline: http.ServeContent on wharf's own blob file (a plain static file server: sendfile) and a bare Go handler
  writing the same manifest bytes from memory. Warm pulls, hits and blob pulls take short turns per target, in rotating
  order, several per round, so that the machine's bursts of noise spread over all targets. CPU time is utime+stime from /proc/PID/stat
  around the blob pulls. Warm pulls per second are bytes per second over the bytes of one pull, since a turn of a few
  seconds holds too few whole pulls to count.
- **WAN** scenarios turn on the relay's round-trip time and per-connection rate for their pulls only (its section says how
  much) and off again, so the other scenarios run on the plain link.
- **Rounds** alternate which mirror goes first; the tables give medians over every round and turn.
`

// indent makes text a Markdown code block by indenting every line.
func indent(text string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" {
			b.WriteString("    " + line)
		}
	}
	return b.String()
}
