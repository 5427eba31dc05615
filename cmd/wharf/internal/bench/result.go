package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Result is what a run measured. Its JSON form is what --json prints.
type Result struct {
	Op       string        `json:"op"` // "pull", "push" or "storm"
	Registry string        `json:"registry"`
	Clients  int           `json:"clients"`
	Elapsed  time.Duration `json:"-"`
	Seconds  float64       `json:"elapsed_seconds"`

	// Ops is the number of pulls or pushes that completed, Failed the
	// number that failed; operations cut off by the duration are in
	// neither.
	Ops          int64   `json:"ops"`
	Failed       int64   `json:"failed"`
	OpsPerSecond float64 `json:"ops_per_second"`

	// Bytes counts manifest and blob bodies moved, verified or not, the
	// cut-off operations' included.
	Bytes          int64   `json:"bytes"`
	BytesPerSecond float64 `json:"bytes_per_second"`

	Requests          int64   `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`

	// Latency by kind: "manifest" and "blob" requests (a blob's time runs
	// to its last byte), and whole "pull"s or "push"es.
	Latency map[string]Percentiles `json:"latency"`
	// Errors counts failed operations by the kind of their first error
	// (http_503, digest, size, network, timeout, manifest, platform,
	// other); ErrorExamples keeps the first message of each kind.
	Errors        map[string]int    `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
}

// OpsName is the plural of Op: "pulls", "pushes"; a storm's are "ops".
func (r *Result) OpsName() string {
	if r.Op == "storm" {
		return "ops"
	}
	if strings.HasSuffix(r.Op, "sh") {
		return r.Op + "es"
	}
	return r.Op + "s"
}

func merge(op string, o *Common, elapsed time.Duration, ctr *counters, clients []*client) *Result {
	r := &Result{
		Op: op, Registry: o.Registry, Clients: o.Clients, Elapsed: elapsed, Seconds: elapsed.Seconds(),
		Ops: ctr.ops.Load(), Failed: ctr.failed.Load(), Bytes: ctr.bytes.Load(), Requests: ctr.requests.Load(),
		Latency: map[string]Percentiles{}, Errors: map[string]int{}, ErrorExamples: map[string]string{},
	}
	if s := elapsed.Seconds(); s > 0 {
		r.OpsPerSecond = float64(r.Ops) / s
		r.BytesPerSecond = float64(r.Bytes) / s
		r.RequestsPerSecond = float64(r.Requests) / s
	}
	byKind := map[string][]*samples{}
	for _, c := range clients {
		for k, s := range c.rec.latency {
			byKind[k] = append(byKind[k], s)
		}
		for k, n := range c.rec.errors {
			r.Errors[k] += n
			if _, ok := r.ErrorExamples[k]; !ok {
				r.ErrorExamples[k] = c.rec.example[k]
			}
		}
	}
	for k, parts := range byKind {
		r.Latency[k] = summarize(parts)
	}
	return r
}

// WriteText writes r for people: one block, aligned, sizes in binary units.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	plural := r.OpsName()
	fmt.Fprintf(&b, "%s  %s  %d clients  %.2fs\n", r.Op, r.Registry, r.Clients, r.Seconds)
	fmt.Fprintf(&b, "  %-9s %d done, %d failed   %.2f/s\n", plural, r.Ops, r.Failed, r.OpsPerSecond)
	fmt.Fprintf(&b, "  %-9s %s   %s/s\n", "bytes", FormatBytes(float64(r.Bytes)), FormatBytes(r.BytesPerSecond))
	fmt.Fprintf(&b, "  %-9s %d   %.1f/s\n", "requests", r.Requests, r.RequestsPerSecond)
	fmt.Fprintf(&b, "  %-9s %8s %10s %10s %10s %10s\n", "latency", "count", "p50", "p90", "p99", "max")
	for _, k := range []string{"manifest", "blob", r.Op} {
		if p, ok := r.Latency[k]; ok {
			fmt.Fprintf(&b, "    %-7s %8d %10s %10s %10s %10s\n", k, p.Count, round(p.P50), round(p.P90), round(p.P99), round(p.Max))
		}
	}
	if len(r.Errors) == 0 {
		fmt.Fprintf(&b, "  %-9s none\n", "errors")
	} else {
		fmt.Fprintf(&b, "  %-9s\n", "errors")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "    %-10s %6d   e.g. %s\n", k, r.Errors[k], r.ErrorExamples[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// round keeps three significant figures or so, which is all a latency
// measured on a shared machine is worth.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// FormatBytes writes n bytes in binary units: "1.5 KiB", "312 MiB".
func FormatBytes(n float64) string { return humanize.IBytes(uint64(max(0, n))) }
