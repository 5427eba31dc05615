package main

import (
	"fmt"
	"html"
	"strings"
)

// The chart is SVG written by hand: two panels of grouped bars, no
// plotting library and no external tool, so `make bench` needs nothing but
// Go. Colours are fixed per series so the panels read together.
var seriesColor = map[string]string{
	"direct":       "#9e9e9e",
	"baseline":     "#9e9e9e",
	"wharf":        "#1f77b4",
	"distribution": "#ff7f0e",
}

type bar struct {
	series string
	value  float64 // bar height, in the panel's unit
	label  string  // written above the bar
}

type group struct {
	name string
	bars []bar
}

const (
	chartW  = 860.0
	panelH  = 300.0
	marginL = 60.0
	marginR = 20.0
	legendH = 30.0
)

func (h *harness) chart() string {
	var b strings.Builder
	total := legendH + 2*panelH + 20
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		chartW, total, chartW, total)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	x := marginL
	for _, s := range []struct{ name, label string }{{"wharf", "wharf"}, {"distribution", "distribution (proxy mode)"}, {"direct", "direct pull / baseline"}} {
		fmt.Fprintf(&b, `<rect x="%.0f" y="8" width="14" height="14" fill="%s"/><text x="%.0f" y="20">%s</text>`+"\n", x, seriesColor[s.name], x+20, html.EscapeString(s.label))
		x += 30 + 7.5*float64(len(s.label))
	}

	var cold []group
	g := group{name: "1 client"}
	for _, t := range []string{"direct", "wharf", "distribution"} {
		v := h.med(scCold, t, "seconds")
		g.bars = append(g.bars, bar{t, v, fmt.Sprintf("%.2f s", v)})
	}
	cold = append(cold, g)
	for _, n := range h.p.Concurrent {
		g := group{name: fmt.Sprintf("%d clients", n)}
		for _, t := range []string{"wharf", "distribution"} {
			v := h.med(coldN(n), t, "seconds")
			g.bars = append(g.bars, bar{t, v, fmt.Sprintf("%.2f s", v)})
		}
		cold = append(cold, g)
	}
	panel(&b, legendH, fmt.Sprintf("Cold pull of a %s image over a %s/s link: wall time, seconds (lower is better)", size(h.run.AppBytes), size(h.p.Rate)), cold, false)

	var warm []group
	add := func(name, sc, metric string, scale float64, unit string, targets ...string) {
		g := group{name: name}
		for _, t := range targets {
			v := h.med(sc, t, metric) / scale
			g.bars = append(g.bars, bar{t, v, fmt.Sprintf("%.0f %s", v, unit)})
		}
		warm = append(warm, g)
	}
	add("warm pull", scWarm, "bytes_per_s", 1<<20, "MiB/s", "wharf", "distribution")
	add("manifest by digest", scHitsDigest, "req_per_s", 1, "/s", "wharf", "distribution", "baseline")
	add("manifest by tag", scHitsTag, "req_per_s", 1, "/s", "wharf", "distribution", "baseline")
	add(size(h.p.BlobSize)+" blob", scBlob, "bytes_per_s", 1<<20, "MiB/s", "wharf", "distribution", "baseline")
	panel(&b, legendH+panelH+20, "From cache: throughput, each group scaled to its best (higher is better)", warm, true)
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws grouped bars in a band starting at top. With perGroup, each
// group is scaled to its own largest bar (for groups in different units);
// otherwise one axis, in the bars' unit, serves all groups.
func panel(b *strings.Builder, top float64, title string, groups []group, perGroup bool) {
	plotTop, plotH := top+40, panelH-80
	base := plotTop + plotH
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", marginL, top+20, html.EscapeString(title))
	maxAll := 0.0
	for _, g := range groups {
		for _, br := range g.bars {
			maxAll = max(maxAll, br.value)
		}
	}
	if maxAll == 0 {
		maxAll = 1
	}
	if !perGroup {
		for i := 0; i <= 4; i++ {
			v := maxAll * float64(i) / 4
			y := base - plotH*float64(i)/4
			fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e0e0e0"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%.1f</text>`+"\n",
				marginL, y, chartW-marginR, y, marginL-6, y+4, v)
		}
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333"/>`+"\n", marginL, base, chartW-marginR, base)
	slot := (chartW - marginL - marginR) / float64(len(groups))
	for i, g := range groups {
		scale := maxAll
		if perGroup {
			scale = 0
			for _, br := range g.bars {
				scale = max(scale, br.value)
			}
			if scale == 0 {
				scale = 1
			}
		}
		bw := min(60.0, (slot-30)/float64(len(g.bars)))
		x0 := marginL + float64(i)*slot + (slot-bw*float64(len(g.bars)))/2
		for j, br := range g.bars {
			hgt := plotH * br.value / scale
			x := x0 + float64(j)*bw
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				x+2, base-hgt, bw-4, hgt, seriesColor[br.series], br.series, html.EscapeString(br.label))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+bw/2, base-hgt-4, html.EscapeString(br.label))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", marginL+float64(i)*slot+slot/2, base+18, html.EscapeString(g.name))
	}
}
