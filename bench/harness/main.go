package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// params are the sizes and counts of a run. Two scales are predefined
// (full, the default, and quick, a smoke run); every field can be set on
// its own too.
type params struct {
	Scale        string
	Rounds       int
	Layers       int
	LayerSize    int64
	BlobSize     int64
	Rate         int64
	Concurrent   []int // clients pulling one cold image at once
	HitClients   int
	HitDuration  time.Duration
	WarmClients  int
	WarmDuration time.Duration
	Slices       int // turns per target and round in the warm scenarios
	BlobPulls    int
	Unthrottled  bool
	Profile      bool
	Cluster      bool   // the cluster scenarios (issue 13): 3 replicas on MinIO behind HAProxy
	PeerTags     int    // tags fetched through a peer, per round
	Only         string // one scenario alone (peer-hop, wan), for measuring a change to it
	WAN          bool   // the WAN scenarios (issue 14): latency and a per-connection cap on the link
	RTT          time.Duration
	ConnRate     int64   // bytes per second per connection on the WAN link
	WANLayers    []int64 // the WAN image's layer sizes, mixed as a real image's are
	WANClients   int     // clients pulling the cold WAN image at once
	Base         string  // a revision of wharf (bin/wharf-base) measured beside wharf under --only cold or wan
}

// wanLayersFull is the WAN image (252 MiB): twelve layers of mixed sizes,
// big ones first and among small ones as real images have them, so that
// 3 layers at a time do not split evenly. The quick scale's is half.
var (
	wanLayersFull  = mib(64, 1, 32, 2, 16, 4, 48, 8, 24, 1, 12, 40)
	wanLayersQuick = mib(32, 1, 16, 2, 8, 4, 24, 1, 12, 2, 6, 20)
)

func mib(n ...int64) []int64 {
	out := make([]int64, len(n))
	for i, v := range n {
		out[i] = v << 20
	}
	return out
}

var scales = map[string]params{
	"full": {Rounds: 3, Layers: 8, LayerSize: 40 << 20, BlobSize: 1 << 30, Concurrent: []int{8, 32},
		HitClients: 64, HitDuration: 2 * time.Second, WarmClients: 2, WarmDuration: 2 * time.Second, Slices: 3, BlobPulls: 2, Unthrottled: true, PeerTags: 300,
		WAN: true, RTT: 50 * time.Millisecond, ConnRate: 25 << 20, WANLayers: wanLayersFull, WANClients: 8},
	"quick": {Rounds: 1, Layers: 4, LayerSize: 16 << 20, BlobSize: 256 << 20, Concurrent: []int{8, 32},
		HitClients: 64, HitDuration: time.Second, WarmClients: 2, WarmDuration: time.Second, Slices: 2, BlobPulls: 2, Unthrottled: true, PeerTags: 100,
		WAN: true, RTT: 50 * time.Millisecond, ConnRate: 25 << 20, WANLayers: wanLayersQuick, WANClients: 8},
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	scale := fs.String("scale", "full", "full or quick")
	bin := fs.String("bin", "bench/bin", "directory holding wharf, registry, relay and baseline")
	work := fs.String("work", "bench/out", "work directory: data, configs, logs, profiles")
	docs := fs.String("docs", "docs", "where benchmarks.md and benchmarks.svg go")
	command := fs.String("command", "make bench", "the command to record in the report")
	rounds := fs.Int("rounds", 0, "rounds (0: the scale's)")
	layers := fs.Int("layers", 0, "layers of the pulled image (0: the scale's)")
	layerSize := fs.String("layer-size", "", "bytes per layer, e.g. 40MiB (empty: the scale's)")
	blobSize := fs.String("blob-size", "", "size of the single large blob, e.g. 1GiB (empty: the scale's)")
	rate := fs.String("rate", "200MiB", "bytes per second of the link to the upstream")
	unthrottled := fs.Bool("unthrottled", true, "repeat the cold pulls with the link unthrottled")
	profile := fs.Bool("profile", false, "capture CPU profiles of wharf in a pass after the rounds")
	render := fs.String("render", "", "write the report from a saved run.json instead of measuring")
	only := fs.String("only", "", "run one scenario alone: peer-hop (needs the cluster's tools), wan, or cold (the plain link's cold pulls)")
	wan := fs.Bool("wan", true, "run the WAN scenarios: the link with a round-trip time and a per-connection rate")
	rtt := fs.String("rtt", "", "round-trip time of the WAN link, e.g. 50ms (empty: the scale's)")
	connRate := fs.String("conn-rate", "", "bytes per second per connection on the WAN link, e.g. 25MiB (empty: the scale's)")
	base := fs.String("base", "", "with --only cold or wan: also measure bin/wharf-base, built from this revision, as a mirror beside wharf")
	wanLayers := fs.String("wan-layers", "", "the WAN image's layer sizes, e.g. 64MiB,1MiB,32MiB (empty: the scale's)")
	var tools clusterTools
	fs.StringVar(&tools.MinIO, "minio", "", "MinIO server binary, for the cluster scenarios")
	fs.StringVar(&tools.HAProxy, "haproxy", "", "HAProxy binary, for the cluster scenarios")
	fs.StringVar(&tools.S3Tool, "s3tool", "", "s3tool binary (e2e/testdata/s3tool), makes the clusters' buckets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, ok := scales[*scale]
	if !ok {
		return fmt.Errorf("--scale %q: want full or quick", *scale)
	}
	p.Scale, p.Base = *scale, *base
	if *rounds > 0 {
		p.Rounds = *rounds
	}
	if *layers > 0 {
		p.Layers = *layers
	}
	var err error
	for _, s := range []struct {
		in  string
		out *int64
	}{{*layerSize, &p.LayerSize}, {*blobSize, &p.BlobSize}, {*rate, &p.Rate}, {*connRate, &p.ConnRate}} {
		if s.in == "" {
			continue
		}
		if *s.out, err = parseSize(s.in); err != nil {
			return err
		}
	}
	if *wanLayers != "" {
		if p.WANLayers, err = parseSizes(*wanLayers); err != nil {
			return err
		}
	}
	if *rtt != "" {
		if p.RTT, err = time.ParseDuration(*rtt); err != nil || p.RTT < 0 {
			return fmt.Errorf("--rtt %q: want a duration such as 50ms", *rtt)
		}
	}
	p.Unthrottled, p.Profile, p.WAN = *unthrottled, *profile, *wan
	p.Cluster = tools.ok()
	switch p.Only = *only; {
	case p.Only == "":
	case p.Only != scPeerHop && p.Only != scWAN && p.Only != scCold:
		return fmt.Errorf("--only %q: want %s, %s or %s", p.Only, scPeerHop, scWAN, scCold)
	case p.Only == scPeerHop && !p.Cluster:
		return fmt.Errorf("--only %s: needs --minio, --haproxy and --s3tool", p.Only)
	case p.Only == scWAN && !p.WAN:
		return fmt.Errorf("--only %s with --wan=false: nothing to run", p.Only)
	}

	if p.Base != "" {
		if p.Only != scCold && p.Only != scWAN {
			return fmt.Errorf("--base %s: only with --only %s or %s", p.Base, scCold, scWAN)
		}
		if _, err := os.Stat(filepath.Join(*bin, kindBase)); err != nil {
			return fmt.Errorf("--base %s: %w (bench/run.sh builds it for BENCH_BASE_REV)", p.Base, err)
		}
	}

	abs := func(s string) string { a, _ := filepath.Abs(s); return a }
	h := &harness{p: p, bin: abs(*bin), work: abs(*work), docs: abs(*docs), tools: tools}
	if *render != "" {
		rec, err := loadRecord(*render)
		if err != nil {
			return err
		}
		h.p, h.run = rec.Params, rec
		return h.report()
	}
	h.run = newRecord(p, *command)
	if err := os.RemoveAll(h.work); err != nil {
		return err
	}
	if err := os.MkdirAll(h.work, 0o755); err != nil {
		return err
	}
	defer h.stopAll()
	if err := h.measure(ctx); err != nil {
		return err
	}
	h.run.Took = time.Since(h.run.Started)
	if err := h.run.save(filepath.Join(h.work, "run.json")); err != nil {
		return err
	}
	if p.Only != "" {
		switch p.Only {
		case scWAN:
			h.logTargets(h.wanTargets())
		case scCold:
			h.logTargets(h.plainTargets())
		}
		return nil // one scenario's figures are in the log and run.json, not a report
	}
	return h.report()
}

// parseSize reads "200MiB", "1GiB", "40M" or a number of bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want e.g. 200MiB", s)
	}
	return n, nil
}

// parseSizes reads a comma-separated list of sizes, each with its unit:
// "64MiB,1MiB,512KiB".
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if _, err := strconv.ParseFloat(f, 64); err == nil {
			return nil, fmt.Errorf("size %q in %q: give a unit, e.g. %sMiB", f, s, f)
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return nil, fmt.Errorf("size %q in %q: want more than 0 bytes", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// logf prints progress to stderr with the time since the run started.
func (h *harness) logf(format string, args ...any) {
	if h.t0.IsZero() {
		h.t0 = time.Now()
	}
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(h.t0).Seconds(), fmt.Sprintf(format, args...))
}
