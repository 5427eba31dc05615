package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The WAN scenarios (issue 14, "faster than pulling direct"): the relay
// adds a round-trip time and a rate per connection to its shared rate, as
// a registry in another region would, and the WAN image (p.WANLayers) is
// pulled 3 layers at a time, as the docker daemon pulls.
const (
	scWAN     = "wan"      // --only wan
	wanPrefix = "wan-"     // of the cold scenarios over the WAN link: wan-cold, wan-cold8
	scWANWarm = "wan-warm" // one pull from mirrors that hold the image, over the WAN link
)

func wanColdN(n int) string { return wanPrefix + coldN(n) }

// Metrics the WAN scenarios read from wharf's /metrics.
const (
	metricUpstreamRequests = "wharf_upstream_requests_total"
	metricFillsInFlight    = "wharf_fills_in_flight"
)

// wanOnly runs the WAN scenarios alone, every round: the quick way to
// measure a change to what they measure.
func (h *harness) wanOnly(ctx context.Context) error {
	h.logf("seeding the WAN image")
	if err := h.seedWAN(ctx); err != nil {
		return err
	}
	h.run.WANBytes = h.img.wanBytes
	warm, err := h.startWANWarm(ctx)
	if err != nil {
		return err
	}
	for round := 1; round <= h.p.Rounds; round++ {
		mirrors := h.withBase(mirrorsFor(round))
		h.logf("round %d of %d: WAN alone, %s first", round, h.p.Rounds, mirrors[0])
		if err := h.wanRound(ctx, round, mirrors, warm); err != nil {
			return err
		}
	}
	if h.p.Profile {
		return h.wanProfile(ctx)
	}
	return nil
}

// startWANWarm starts a wharf and a distribution that hold the WAN image,
// filled over the unpaced link (filling is not measured). It returns them
// in that order.
func (h *harness) startWANWarm(ctx context.Context) ([]*server, error) {
	w, err := h.startWharf(ctx, "wharf-wan-warm")
	if err != nil {
		return nil, err
	}
	d, err := h.startDistribution(ctx, "distribution-wan-warm", h.relay.url)
	if err != nil {
		return nil, err
	}
	if err := h.setRate(ctx, 0); err != nil {
		return nil, err
	}
	for _, s := range []*server{w, d} {
		for range 2 { // distribution serves a blob locally only from its second fetch
			if _, err := h.load(ctx, s.url, "--pulls", "1", h.img.wan); err != nil {
				return nil, fmt.Errorf("warming %s with %s: %w", s.kind, h.img.wan, err)
			}
		}
		if _, err := h.quiet(ctx, s); err != nil {
			return nil, err
		}
	}
	if err := h.setRate(ctx, h.p.Rate); err != nil {
		return nil, err
	}
	h.logf("WAN image %s (%d layers, %s) held by a warm wharf and distribution", h.img.wan, len(h.p.WANLayers), size(h.img.wanBytes))
	return []*server{w, d}, nil
}

// wanRound runs one round of the WAN scenarios with the relay's WAN link
// on, and turns it off again: a cold pull direct and through each mirror,
// WANClients clients through each mirror, a pull from each warm mirror.
func (h *harness) wanRound(ctx context.Context, round int, mirrors []string, warm []*server) error {
	h.logf("  WAN link: rtt %v, %s/s per connection, %s/s shared", h.p.RTT, size(h.p.ConnRate), size(h.p.Rate))
	if err := h.setWAN(ctx, true); err != nil {
		return err
	}
	return errors.Join(h.wanScenarios(ctx, round, mirrors, warm), h.setWAN(ctx, false))
}

func (h *harness) wanScenarios(ctx context.Context, round int, mirrors []string, warm []*server) error {
	for _, kind := range append([]string{"direct"}, mirrors...) {
		if err := h.cold(ctx, wanPrefix, h.img.wan, round, kind, 1); err != nil {
			return err
		}
	}
	for _, kind := range mirrors {
		if err := h.cold(ctx, wanPrefix, h.img.wan, round, kind, h.p.WANClients); err != nil {
			return err
		}
	}
	for _, t := range rotate(warm, round) {
		if err := h.wanWarmPull(ctx, round, t); err != nil {
			return err
		}
	}
	return nil
}

// wanWarmPull pulls the WAN image once from a mirror that holds it, and
// records what that cost the upstream: bytes and connections (the relay's
// counts) and, for wharf, requests (its wharf_upstream_requests_total),
// counted once the mirror has gone quiet, since a prefetch may outlast the
// pull that started it.
func (h *harness) wanWarmPull(ctx context.Context, round int, t *server) error {
	m0, err := h.quiet(ctx, t)
	if err != nil {
		return err
	}
	st0, err := h.relayStats(ctx)
	if err != nil {
		return err
	}
	r, err := h.load(ctx, t.url, "--clients", "1", "--pulls", "1", "--parallel", dockerParallel, h.img.wan)
	if err != nil {
		return err
	}
	m1, err := h.quiet(ctx, t)
	if err != nil {
		return err
	}
	st1, err := h.relayStats(ctx)
	if err != nil {
		return err
	}
	h.add(scWANWarm, t.kind, round, "seconds", r.Seconds)
	h.add(scWANWarm, t.kind, round, "upstream", float64(st1.Down-st0.Down))
	h.add(scWANWarm, t.kind, round, "upstream_conns", float64(st1.Conns-st0.Conns))
	reqs := "—"
	if m0 != nil && m1 != nil {
		n := m1.sum(metricUpstreamRequests, "") - m0.sum(metricUpstreamRequests, "")
		h.add(scWANWarm, t.kind, round, "upstream_requests", n)
		reqs = strconv.FormatFloat(n, 'f', 0, 64)
	}
	h.logf("  %-8s %-12s %6.2fs  upstream %s, %s requests, %d new connections", scWANWarm, t.kind, r.Seconds,
		size(st1.Down-st0.Down), reqs, st1.Conns-st0.Conns)
	return nil
}

// quiet waits until nothing moves between the mirror and the upstream:
// the relay's byte counts unchanged over three polls 200 ms apart and,
// for wharf, no fill in flight and its upstream request count unchanged
// too. It returns wharf's last scrape (nil for another mirror).
func (h *harness) quiet(ctx context.Context, t *server) (promText, error) {
	const poll, still = 200 * time.Millisecond, 3
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for same := 0; time.Now().Before(deadline); {
		st, err := h.relayStats(ctx)
		if err != nil {
			return nil, err
		}
		var m promText
		if t.kind == "wharf" {
			if m, err = scrape(ctx, t.url+"/metrics"); err != nil {
				return nil, err
			}
		}
		now := fmt.Sprint(st.Down, st.Up, m.sum(metricUpstreamRequests, ""))
		if now == last && m.sum(metricFillsInFlight, "") == 0 {
			same++
		} else {
			same = 0
		}
		if last = now; same >= still {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
	return nil, fmt.Errorf("%s still talking to the upstream after 30s", t.kind)
}

// wanProfile records wharf's CPU while WANClients clients pull the cold
// WAN image through it over the WAN link: where the time goes that the
// WAN targets measure.
func (h *harness) wanProfile(ctx context.Context) error {
	h.logf("profiling wharf over the WAN link")
	if err := h.setWAN(ctx, true); err != nil {
		return err
	}
	s, err := h.startWharf(ctx, "wharf-profile-wan")
	if err != nil {
		return errors.Join(err, h.setWAN(ctx, false))
	}
	n := strconv.Itoa(h.p.WANClients)
	err = h.profileDuring(ctx, wanColdN(h.p.WANClients), s, func() error {
		_, err := h.load(ctx, s.url, "--clients", n, "--pulls", n, "--parallel", dockerParallel, h.img.wan)
		return err
	})
	s.stop()
	return errors.Join(err, h.setWAN(ctx, false))
}
