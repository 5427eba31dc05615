package statuspage

import (
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/wharf-mirror/wharf/cache"
)

// The page is one html/template file, embedded: plain HTML and a little CSS,
// no script and no build step. html/template escapes every value for its
// context, so a repository or error text cannot inject markup.
//
//go:embed status.html
var statusHTML string

// parseTemplate parses the page; pullName names repositories as clients
// pull them (nil: by their store identity).
func parseTemplate(pullName func(cache.Repo) string) (*template.Template, error) {
	t, err := template.New("status").Funcs(template.FuncMap{
		"pullName": func(stored string) string { // "<upstream>/<path>", as cache.Repo.String writes it
			up, path, ok := strings.Cut(stored, "/")
			if pullName != nil && ok {
				if n := pullName(cache.Repo{Upstream: up, Path: path}); n != "" {
					return n
				}
			}
			return stored
		},
		"bytes":   fmtBytes,
		"count":   fmtCount,
		"ratio":   fmtRatio,
		"percent": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"ago":     fmtAgo,
		"latency": fmtLatency,
		"clock":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"budget":  budgetPercent,
		"sub":     func(a, b int64) int64 { return a - b },
		"div":     func(a, b float64) float64 { return a / b },
		"addf":    func(a, b float64) float64 { return a + b },
		"since":   fmtSince,
		"until":   fmtUntil,
	}).Parse(statusHTML)
	if err != nil {
		return nil, fmt.Errorf("statuspage: template: %w", err)
	}
	return t, nil
}

// fmtBytes writes a byte count in binary units, as the command line
// does: "1.5 GiB", "312 MiB".
func fmtBytes(v any) string {
	return humanize.IBytes(uint64(max(0, toFloat(v))))
}

// fmtCount writes a whole number with thousands separators: "12,345".
func fmtCount(v any) string {
	s := strconv.FormatInt(int64(math.Round(toFloat(v))), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtRatio writes hits/(hits+misses) as a percentage, "—" before any.
func fmtRatio(hits, misses any) string {
	h, m := toFloat(hits), toFloat(misses)
	if h+m == 0 {
		return "—"
	}
	return strconv.FormatFloat(100*h/(h+m), 'f', 1, 64) + "%"
}

func fmtAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	}
	return d.Round(time.Minute).String()
}

// fmtLatency writes a short duration to two significant figures:
// "0.84 ms", "12 ms", "1.3 s".
func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
}

// fmtSince writes a past time as its clock and how long ago: "04:12:05
// UTC, 3 min ago".
func fmtSince(t, now time.Time) string {
	return t.UTC().Format("15:04:05 UTC") + ", " + fmtAgo(max(0, now.Sub(t))) + " ago"
}

// fmtUntil writes how long until t: "in 4 s", "now" once it is due.
func fmtUntil(t, now time.Time) string {
	switch d := t.Sub(now); {
	case d <= 0:
		return "now"
	case d < time.Second:
		return "in under a second"
	default:
		return "in " + fmtAgo(d.Round(time.Second))
	}
}

// budgetPercent is the share of the pull budget left, for the bar's width.
func budgetPercent(remain, limit float64) string {
	if limit <= 0 {
		return "0"
	}
	return strconv.FormatFloat(math.Max(0, math.Min(100, 100*remain/limit)), 'f', 1, 64)
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return 0
}
