package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// wanTargets evaluates issue 14's targets on the medians: the WAN rows,
// then the plain link's no-regression rows. A row whose figures were not
// measured (the plain rows under --only wan) is left out.
func (h *harness) wanTargets() []target {
	img := float64(h.run.WANBytes)
	n := h.p.WANClients
	var ts []target
	vs := func(what, sc, metric string, den float64, limit float64, unit string) {
		ts = h.appendVs(ts, what, sc, metric, den, limit, unit)
	}
	direct := h.med(wanPrefix+scCold, "direct", "seconds")
	vs("WAN: cold pull through wharf ÷ direct pull", wanPrefix+scCold, "seconds", direct, 0.6, "×")
	vs(fmt.Sprintf("WAN: %d clients on the same cold image through wharf ÷ one direct pull", n), wanColdN(n), "seconds", direct, 0.7, "×")
	vs("WAN: cold pull, bytes wharf fetched from the upstream ÷ image size", wanPrefix+scCold, "upstream", img, 1.02, "×")
	vs(fmt.Sprintf("WAN: %d clients, bytes wharf fetched from the upstream ÷ image size", n), wanColdN(n), "upstream", img, 1.02, "×")
	if v, ok := h.median(scWANWarm, "wharf", "upstream_requests"); ok {
		t := target{what: "WAN: a pull from a wharf holding the image: upstream requests it caused (prefetch included)",
			measured: v, limit: 0, atMost: true, unit: "requests"}
		if d, ok := h.median(scWANWarm, "distribution", "upstream"); ok {
			t.note = fmt.Sprintf("distribution fetched %s from the upstream for the same pull", size(int64(d)))
		}
		ts = append(ts, t)
	}
	ts = append(ts, h.baseTargets(wanPrefix+scCold, wanColdN(n), "WAN")...)
	return append(ts, h.plainTargets()...)
}

// plainTargets are issue 14's no-regression rows: the plain link's cold
// pulls through wharf against a direct pull.
func (h *harness) plainTargets() []target {
	n := h.p.WANClients
	var ts []target
	vs := func(what, sc string, den float64) { ts = h.appendVs(ts, what, sc, "seconds", den, 1.05, "×") }
	plain := h.med(scCold, "direct", "seconds")
	vs("No regression, plain link (200 MiB/s shared, no latency, no cap): cold pull through wharf ÷ direct pull", scCold, plain)
	vs(fmt.Sprintf("No regression, plain link: %d clients on the same cold image through wharf ÷ one direct pull", n), coldN(n), plain)
	return append(ts, h.baseTargets(scCold, coldN(n), "plain link")...)
}

// baseTargets are the rows "wharf ÷ wharf at --base" of the one-client
// and the n-client cold scenarios, where both were measured.
func (h *harness) baseTargets(one, many, link string) []target {
	if h.p.Base == "" {
		return nil
	}
	var ts []target
	for _, r := range []struct{ what, sc string }{
		{link + ": cold pull", one},
		{fmt.Sprintf("%s: %d clients on the same cold image", link, h.p.WANClients), many},
	} {
		w, ok1 := h.median(r.sc, "wharf", "seconds")
		base, ok2 := h.median(r.sc, kindBase, "seconds")
		if ok1 && ok2 && base > 0 {
			ts = append(ts, target{what: fmt.Sprintf("No regression, %s: wharf ÷ wharf at %s, same rounds", r.what, h.p.Base),
				measured: w / base, limit: 1.05, atMost: true, unit: "×"})
		}
	}
	return ts
}

// appendVs appends to ts the target "wharf's median metric of sc over
// den", with distribution's in the note; nothing if wharf's was not
// measured.
func (h *harness) appendVs(ts []target, what, sc, metric string, den, limit float64, unit string) []target {
	w, ok := h.median(sc, "wharf", metric)
	if !ok || den == 0 {
		return ts
	}
	t := target{what: what, measured: w / den, limit: limit, atMost: true, unit: unit}
	if d, ok := h.median(sc, "distribution", metric); ok {
		t.note = fmt.Sprintf("distribution: %.2f ×", d/den)
	}
	return append(ts, t)
}

// wanReport writes the WAN section: the link, its targets, and the pulls
// direct, through wharf and through distribution side by side.
func (h *harness) wanReport(b *strings.Builder) {
	p := h.p
	fmt.Fprintf(b, "\n## WAN: an upstream %v away, %s/s per connection (issue 14)\n\n", p.RTT, size(p.ConnRate))
	if !p.WAN {
		b.WriteString("Not measured in this run (BENCH_WAN=0).\n")
		return
	}
	n := p.WANClients
	fmt.Fprintf(b, "The relay holds every byte %v each way (a round trip of %v, one more for each new connection, as a TCP handshake costs), paces each connection's download at %s/s and all of them together at %s/s. "+
		"The image is an OCI index whose amd64 image has %d layers of %s MiB in this order (%s pulled in all); every client pulls %s layers at a time, as the docker daemon does. "+
		"Each cold pull starts a mirror on an empty data directory; the warm pull is one pull from a wharf and a distribution that already hold the image.\n\n",
		p.RTT/2, p.RTT, size(p.ConnRate), size(p.Rate), len(p.WANLayers), mibList(p.WANLayers), size(h.run.WANBytes), dockerParallel)
	fmt.Fprintf(b, "Floors, without round trips: a direct pull cannot beat %.2f s (the image over %s connections' rates); a mirror that fetches each blob on one connection cannot beat %.2f s (the largest layer at one connection's rate); the link itself, %.2f s.\n\n",
		h.wanFloor(3), dockerParallel, float64(slices.Max(p.WANLayers))/float64(max(p.ConnRate, 1)), float64(h.run.WANBytes)/float64(max(p.Rate, 1)))

	b.WriteString("| Target | Measured | Required | |\n|---|---:|---:|---|\n")
	for _, t := range h.wanTargets() {
		writeTargetRow(b, t)
	}

	b.WriteString("\n| Scenario | direct | wharf | distribution | wharf ÷ direct | distribution ÷ direct | upstream: wharf | upstream: distribution |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	direct, hasDirect := h.median(wanPrefix+scCold, "direct", "seconds")
	for _, r := range []struct{ name, sc, directCell string }{
		{"Cold pull, 1 client", wanPrefix + scCold, "%.2f s"},
		{fmt.Sprintf("Cold pull, %d clients at once (÷ one direct pull)", n), wanColdN(n), "(%.2f s)"},
		{"Warm pull, 1 client", scWANWarm, "—"},
	} {
		dirCell, vsW, vsD := "—", "—", "—"
		w, d := h.med(r.sc, "wharf", "seconds"), h.med(r.sc, "distribution", "seconds")
		if hasDirect && r.sc != scWANWarm {
			dirCell = fmt.Sprintf(r.directCell, direct)
			vsW, vsD = fmt.Sprintf("%.2f", ratio(w, direct)), fmt.Sprintf("%.2f", ratio(d, direct))
		}
		up := func(t string) string {
			v, ok := h.median(r.sc, t, "upstream")
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%s (%.2f ×)", size(int64(v)), ratio(v, float64(h.run.WANBytes)))
		}
		fmt.Fprintf(b, "| %s | %s | %.2f s | %.2f s | %s | %s | %s | %s |\n", r.name, dirCell, w, d, vsW, vsD, up("wharf"), up("distribution"))
	}
	fmt.Fprintf(b, "\nThe warm pull, counted once the mirror had gone quiet: wharf sent %s upstream requests (`%s`) and opened %s new connections to the upstream; distribution opened %s.\n",
		h.wanFigure(scWANWarm, "wharf", "upstream_requests"), metricUpstreamRequests,
		h.wanFigure(scWANWarm, "wharf", "upstream_conns"), h.wanFigure(scWANWarm, "distribution", "upstream_conns"))
}

// wanFloor is the least time k connections at the per-connection rate
// (within the shared one) need for the WAN image.
func (h *harness) wanFloor(k int64) float64 {
	rate := h.p.ConnRate * k
	if rate == 0 || (h.p.Rate > 0 && h.p.Rate < rate) {
		rate = h.p.Rate
	}
	return ratio(float64(h.run.WANBytes), float64(rate))
}

// wanFigure is a median as a whole number, or "—" if not measured.
func (h *harness) wanFigure(sc, target, metric string) string {
	v, ok := h.median(sc, target, metric)
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// mibList writes layer sizes in MiB: "64, 1, 32".
func mibList(sizes []int64) string {
	s := make([]string, len(sizes))
	for i, v := range sizes {
		s[i] = strconv.FormatFloat(float64(v)/(1<<20), 'f', -1, 64)
	}
	return strings.Join(s, ", ")
}
