package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dustin/go-humanize"
)

// sample is one figure of one target in one round.
type sample struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"` // wharf, distribution, direct, baseline
	Round    int     `json:"round"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
}

func (h *harness) add(scenario, target string, round int, metric string, v float64) {
	h.run.Samples = append(h.run.Samples, sample{scenario, target, round, metric, v})
}

// Scenarios, as named in samples and the report.
const (
	scCold       = "cold"          // one client, empty mirror, paced link
	scWarm       = "warm"          // pulls from a mirror holding the image
	scWarmNV     = "warm-noverify" // the same, the client not hashing
	scHitsDigest = "hits-digest"   // manifest by digest, from cache, 64 clients
	scHitsTag    = "hits-tag"
	scBlob       = "blob" // the large blob from cache, one client
	unthrottled  = "u-"   // prefix of the cold scenarios on an unpaced link
)

// dockerParallel is how many layers the docker daemon pulls at once.
const dockerParallel = "3"

func coldN(n int) string { return "cold" + strconv.Itoa(n) }
func warmN(n int) string { return "warm" + strconv.Itoa(n) }

// measure runs every scenario of every round into h.run.
func (h *harness) measure(ctx context.Context) error {
	h.logf("scale %s: %d rounds, image %d × %s, blob %s, link %s/s",
		h.p.Scale, h.p.Rounds, h.p.Layers, size(h.p.LayerSize), size(h.p.BlobSize), size(h.p.Rate))
	up, err := h.startDistribution(ctx, "upstream", "")
	if err != nil {
		return err
	}
	h.upstream, up.data = up, "" // keep its storage until the work directory goes
	if err := h.startRelay(ctx); err != nil {
		return err
	}
	if h.p.Only == scWAN {
		return h.wanOnly(ctx) // seeds the WAN image alone
	}
	h.logf("seeding the upstream")
	if err := h.seed(ctx); err != nil {
		return err
	}
	h.logf("seeded: %s is %s, %s is %s", h.img.app, size(h.img.appBytes), h.img.big, size(h.img.bigBytes))
	h.run.AppBytes, h.run.BigBytes = h.img.appBytes, h.img.bigBytes

	switch h.p.Only {
	case scPeerHop:
		return h.peerHopOnly(ctx)
	case scCold:
		return h.coldOnly(ctx)
	}
	if h.p.WAN {
		if err := h.seedWAN(ctx); err != nil {
			return err
		}
		h.run.WANBytes = h.img.wanBytes
	}
	warm, err := h.startWarm(ctx)
	if err != nil {
		return err
	}
	var wanWarm []*server
	if h.p.WAN {
		if wanWarm, err = h.startWANWarm(ctx); err != nil {
			return err
		}
	}
	var wc *wharfCluster
	if h.p.Cluster {
		if wc, err = h.startClusterWarm(ctx); err != nil {
			return err
		}
	}
	for round := 1; round <= h.p.Rounds; round++ {
		mirrors := mirrorsFor(round)
		h.logf("round %d of %d: %v first", round, h.p.Rounds, mirrors[0])
		if err := h.colds(ctx, "", round, mirrors); err != nil {
			return err
		}
		if err := h.warmPulls(ctx, round, warm[:2]); err != nil {
			return err
		}
		if err := h.hits(ctx, round, warm); err != nil {
			return err
		}
		if err := h.blob(ctx, round, warm); err != nil {
			return err
		}
		if err := h.warmConcurrent(ctx, round, rotate(warm[:2], round)); err != nil {
			return err
		}
		if wc != nil {
			if err := h.clusterWarm(ctx, round, wc, warm[0]); err != nil {
				return err
			}
			if err := h.peerHop(ctx, round, wc); err != nil {
				return err
			}
		}
		if h.p.WAN {
			if err := h.wanRound(ctx, round, mirrors, wanWarm); err != nil {
				return err
			}
		}
		if !h.p.Unthrottled {
			continue
		}
		if err := h.setRate(ctx, 0); err != nil {
			return err
		}
		if err := h.colds(ctx, unthrottled, round, mirrors); err != nil {
			return err
		}
		if err := h.setRate(ctx, h.p.Rate); err != nil {
			return err
		}
	}
	if !h.p.Profile {
		return nil
	}
	if err := h.profilePass(ctx, warm[0]); err != nil {
		return err
	}
	if h.p.WAN {
		return h.wanProfile(ctx)
	}
	return nil
}

// kindBase is wharf at another revision (--base), a mirror beside wharf.
const kindBase = "wharf-base"

// withBase puts wharf-base between the two mirrors of a round when --base
// is set, so that it alternates with wharf too.
func (h *harness) withBase(mirrors []string) []string {
	if h.p.Base == "" {
		return mirrors
	}
	return []string{mirrors[0], kindBase, mirrors[1]}
}

// mirrorsFor is the order the mirrors go in, in round: alternating.
func mirrorsFor(round int) []string {
	if round%2 == 0 {
		return []string{"distribution", "wharf"}
	}
	return []string{"wharf", "distribution"}
}

// peerHopOnly runs the peer-hop scenario alone, every round, on the
// cluster the warm scenarios would use.
func (h *harness) peerHopOnly(ctx context.Context) error {
	wc, err := h.startClusterWarm(ctx)
	if err != nil {
		return err
	}
	for round := 1; round <= h.p.Rounds; round++ {
		h.logf("round %d of %d: %s alone", round, h.p.Rounds, scPeerHop)
		if err := h.peerHop(ctx, round, wc); err != nil {
			return err
		}
	}
	return nil
}

// coldOnly runs the plain link's cold pulls alone, every round: one
// client direct and through each mirror, then WANClients clients through
// each mirror; the quick way to see what a change to the fill path costs
// where the link, not its latency, is the limit. With p.Base, wharf at
// that revision is a third mirror: a regression shows as a ratio of the
// two taken in the same rounds.
func (h *harness) coldOnly(ctx context.Context) error {
	for round := 1; round <= h.p.Rounds; round++ {
		mirrors := h.withBase(mirrorsFor(round))
		h.logf("round %d of %d: plain-link cold pulls alone, %s first", round, h.p.Rounds, mirrors[0])
		for _, kind := range append([]string{"direct"}, mirrors...) {
			if err := h.cold(ctx, "", h.img.app, round, kind, 1); err != nil {
				return err
			}
		}
		for _, kind := range mirrors {
			if err := h.cold(ctx, "", h.img.app, round, kind, h.p.WANClients); err != nil {
				return err
			}
		}
	}
	return nil
}

// colds runs the cold scenarios of one round: one client (direct, then
// each mirror), then each number of concurrent clients.
func (h *harness) colds(ctx context.Context, prefix string, round int, mirrors []string) error {
	for _, kind := range append([]string{"direct"}, mirrors...) {
		if err := h.cold(ctx, prefix, h.img.app, round, kind, 1); err != nil {
			return err
		}
	}
	for _, n := range h.p.Concurrent {
		kinds := mirrors
		if h.p.Cluster && prefix == "" && n == slices.Max(h.p.Concurrent) {
			kinds = append(slices.Clone(mirrors), "cluster") // issue 13's cold cluster, beside them
		}
		for _, kind := range kinds {
			if err := h.cold(ctx, prefix, h.img.app, round, kind, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// startWarm starts the long-lived instances the warm scenarios use, fills
// the mirrors' caches (over an unpaced link: filling is not measured), and
// starts the baseline on the files wharf stored. It returns wharf,
// distribution and the baseline, in that order.
func (h *harness) startWarm(ctx context.Context) ([]*server, error) {
	w, err := h.startWharf(ctx, "wharf-warm")
	if err != nil {
		return nil, err
	}
	d, err := h.startDistribution(ctx, "distribution-warm", h.relay.url)
	if err != nil {
		return nil, err
	}
	if err := h.setRate(ctx, 0); err != nil {
		return nil, err
	}
	for _, s := range []*server{w, d} {
		// Twice: distribution commits a blob to its storage once the first
		// fetch has finished, and serves it locally only after that.
		for range 2 {
			for _, ref := range []string{h.img.app, h.img.single, h.img.byDigest, h.img.big} {
				if _, err := h.load(ctx, s.url, "--pulls", "1", ref); err != nil {
					return nil, fmt.Errorf("warming %s: %w", s.kind, err)
				}
			}
		}
	}
	if err := h.setRate(ctx, h.p.Rate); err != nil {
		return nil, err
	}
	b, err := h.startBaseline(ctx, filepath.Join(w.data, "blobs"), h.img.manifests)
	if err != nil {
		return nil, err
	}
	h.logf("warm instances ready")
	return []*server{w, d, b}, nil
}

// rotate starts the list at a different place each time, so that no
// target always runs first (or last) on a machine whose noise drifts.
func rotate(s []*server, turn int) []*server {
	k := (turn - 1) % len(s)
	return append(append([]*server{}, s[k:]...), s[:k]...)
}

// interleave measures each target Slices times, in short turns taken in
// rotating order: on a shared machine, noise comes in bursts of seconds,
// and short alternating turns spread a burst over every target instead of
// handing it to one.
func (h *harness) interleave(round int, targets []*server, measure func(t *server) error) error {
	for i := range h.p.Slices {
		for _, t := range rotate(targets, round*h.p.Slices+i+1) {
			if err := measure(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// cold pulls ref with clients clients at once from a mirror started
// afresh on an empty data directory (or directly from the relay), each
// client 3 layers at a time as the docker daemon does. Besides
// the wall time and the bytes fetched from the upstream, it records the CPU
// time of the mirror and of the load generator, which tells a slow mirror
// from a busy machine.
func (h *harness) cold(ctx context.Context, prefix, ref string, round int, kind string, clients int) error {
	scenario := prefix + scCold
	if clients > 1 {
		scenario = prefix + coldN(clients)
	}
	url := h.relay.url
	var s *server
	if kind != "direct" {
		var err error
		if s, err = h.startMirror(ctx, kind, kind+"-"+scenario); err != nil {
			return err
		}
		defer s.stop()
		url = s.url
	}
	before, err := h.upstreamBytes(ctx)
	if err != nil {
		return err
	}
	var cpu0 time.Duration
	if s != nil {
		if cpu0, err = s.cpu(); err != nil {
			return err
		}
	}
	n := strconv.Itoa(clients)
	r, err := h.load(ctx, url, "--clients", n, "--pulls", n, "--parallel", dockerParallel, ref)
	if err != nil {
		return err
	}
	after, err := h.upstreamBytes(ctx)
	if err != nil {
		return err
	}
	h.add(scenario, kind, round, "seconds", r.Seconds)
	h.add(scenario, kind, round, "upstream", float64(after-before))
	h.add(scenario, kind, round, "client_cpu", r.cpu.Seconds())
	if s != nil {
		cpu1, err := s.cpu()
		if err != nil {
			return err
		}
		h.add(scenario, kind, round, "server_cpu", (cpu1 - cpu0).Seconds())
		if err := h.addRSS(scenario, s, round); err != nil {
			return err
		}
	}
	h.logf("  %-8s %-12s %6.2fs  upstream %s  client CPU %.1fs", scenario, kind, r.Seconds, size(after-before), r.cpu.Seconds())
	return nil
}

// warmPulls measures pulls per second from the warm mirrors, with a client
// that verifies (as a daemon does) and one that does not hash.
func (h *harness) warmPulls(ctx context.Context, round int, targets []*server) error {
	for _, sc := range []string{scWarm, scWarmNV} {
		err := h.interleave(round, targets, func(t *server) error {
			args := []string{"--clients", strconv.Itoa(h.p.WarmClients), "--duration", h.p.WarmDuration.String(), h.img.app}
			if sc == scWarmNV {
				args = append([]string{"--no-verify"}, args...)
			}
			if err := resetPeak(t.proc.pid()); err != nil {
				return err
			}
			r, err := h.load(ctx, t.url, args...)
			if err != nil {
				return err
			}
			// Pulls per second from bytes: a turn of a few seconds holds
			// too few whole pulls to count them.
			pulls := r.BytesPerSecond / float64(h.img.appBytes)
			h.add(sc, t.kind, round, "pulls_per_s", pulls)
			h.add(sc, t.kind, round, "bytes_per_s", r.BytesPerSecond)
			h.logf("  %-13s %-12s %6.2f pulls/s  %s/s", sc, t.kind, pulls, size(int64(r.BytesPerSecond)))
			return h.addRSS(sc, t, round)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// warmConcurrent pulls the cached image with n clients at once, for each n
// of the cold scenarios: the same load from a warm mirror, which shows how
// much of a cold n-client figure is the machine (n clients hashing n images
// on 2 cores) rather than the mirror.
func (h *harness) warmConcurrent(ctx context.Context, round int, targets []*server) error {
	for _, n := range h.p.Concurrent {
		for _, t := range targets {
			if err := resetPeak(t.proc.pid()); err != nil {
				return err
			}
			k := strconv.Itoa(n)
			r, err := h.load(ctx, t.url, "--clients", k, "--pulls", k, h.img.app)
			if err != nil {
				return err
			}
			h.add(warmN(n), t.kind, round, "seconds", r.Seconds)
			h.add(warmN(n), t.kind, round, "client_cpu", r.cpu.Seconds())
			if err := h.addRSS(warmN(n), t, round); err != nil {
				return err
			}
			h.logf("  %-8s %-12s %6.2fs  client CPU %.1fs", warmN(n), t.kind, r.Seconds, r.cpu.Seconds())
		}
	}
	return nil
}

func (h *harness) addRSS(scenario string, s *server, round int) error {
	rss, err := s.peakRSS()
	if err != nil {
		return err
	}
	h.add(scenario, s.kind, round, "rss", float64(rss))
	return nil
}

// hits measures manifest requests per second, by digest and by tag, with
// HitClients clients against each warm target.
func (h *harness) hits(ctx context.Context, round int, targets []*server) error {
	for _, sc := range []struct{ name, ref string }{{scHitsDigest, h.img.byDigest}, {scHitsTag, h.img.single}} {
		err := h.interleave(round, targets, func(t *server) error {
			if err := resetPeak(t.proc.pid()); err != nil {
				return err
			}
			r, err := h.load(ctx, t.url, "--manifests-only", "--clients", strconv.Itoa(h.p.HitClients),
				"--duration", h.p.HitDuration.String(), sc.ref)
			if err != nil {
				return err
			}
			h.add(sc.name, t.kind, round, "req_per_s", r.RequestsPerSecond)
			h.logf("  %-11s %-12s %8.0f req/s", sc.name, t.kind, r.RequestsPerSecond)
			return h.addRSS(sc.name, t, round)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// blob measures the large blob served from cache, in interleaved turns:
// throughput seen by one client that does not hash (so the client is not
// the bottleneck), and the CPU time the server spent per GiB sent.
func (h *harness) blob(ctx context.Context, round int, targets []*server) error {
	return h.interleave(round, targets, func(t *server) error {
		pid := t.proc.pid()
		if err := resetPeak(pid); err != nil {
			return err
		}
		c0, err := cpuTime(pid)
		if err != nil {
			return err
		}
		r, err := h.load(ctx, t.url, "--no-verify", "--clients", "1", "--pulls", strconv.Itoa(h.p.BlobPulls), h.img.big)
		if err != nil {
			return err
		}
		c1, err := cpuTime(pid)
		if err != nil {
			return err
		}
		gib := float64(r.Bytes) / (1 << 30)
		h.add(scBlob, t.kind, round, "bytes_per_s", r.BytesPerSecond)
		h.add(scBlob, t.kind, round, "cpu_per_gib", (c1-c0).Seconds()/gib)
		h.logf("  %-8s %-12s %s/s  %.2f CPU-s/GiB", scBlob, t.kind, size(int64(r.BytesPerSecond)), (c1-c0).Seconds()/gib)
		return h.addRSS(scBlob, t, round)
	})
}

// profile is a CPU profile of wharf taken during a scenario, with its top
// functions.
type profile struct {
	Scenario string
	File     string
	Top      string // by flat time
	Cum      string // by cumulative time
}

// profilePass repeats the scenarios behind the targets while pprof records
// wharf, after the measured rounds so profiling never skews a figure.
func (h *harness) profilePass(ctx context.Context, w *server) error {
	h.logf("profiling wharf")
	run := func(scenario string, s *server, load func() error) error {
		return h.profileDuring(ctx, scenario, s, load)
	}
	dur := strconv.Itoa(profileSeconds+1) + "s"
	if err := run(scHitsDigest, w, func() error {
		_, err := h.load(ctx, w.url, "--manifests-only", "--clients", strconv.Itoa(h.p.HitClients), "--duration", dur, h.img.byDigest)
		return err
	}); err != nil {
		return err
	}
	if err := run(scWarmNV, w, func() error {
		_, err := h.load(ctx, w.url, "--no-verify", "--clients", strconv.Itoa(h.p.WarmClients), "--duration", dur, h.img.app)
		return err
	}); err != nil {
		return err
	}
	if err := run(scBlob, w, func() error {
		_, err := h.load(ctx, w.url, "--no-verify", "--clients", "1", "--duration", dur, h.img.big)
		return err
	}); err != nil {
		return err
	}
	n := h.p.Concurrent[len(h.p.Concurrent)-1]
	s, err := h.startWharf(ctx, "wharf-profile")
	if err != nil {
		return err
	}
	defer s.stop()
	return run(coldN(n), s, func() error {
		_, err := h.load(ctx, s.url, "--clients", strconv.Itoa(n), "--pulls", strconv.Itoa(n), h.img.app)
		return err
	})
}

// profileSeconds is how long each CPU profile records.
const profileSeconds = 8

// profileDuring records a CPU profile of s while load runs, and keeps its
// top functions for the report.
func (h *harness) profileDuring(ctx context.Context, scenario string, s *server, load func() error) error {
	file := filepath.Join(h.work, "profile-"+scenario+".pprof")
	done := make(chan error, 1)
	go func() { done <- h.captureProfile(ctx, s, profileSeconds, file) }()
	time.Sleep(100 * time.Millisecond) // the profiler starts recording once it has the request
	if err := load(); err != nil {
		<-done
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	flat, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", file).Output()
	if err != nil {
		return fmt.Errorf("pprof %s: %w", file, err)
	}
	cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=25", file).Output()
	if err != nil {
		return fmt.Errorf("pprof %s: %w", file, err)
	}
	h.run.Profiles = append(h.run.Profiles, profile{scenario, filepath.Base(file), string(flat), string(cum)})
	return nil
}

func (h *harness) captureProfile(ctx context.Context, s *server, secs int, file string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.debug, secs)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// size writes bytes in binary units.
func size(n int64) string { return humanize.IBytes(uint64(max(0, n))) }
