package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// promText is a scrape of a Prometheus text exposition: each sample line,
// its name with labels ("wharf_x{a=\"b\"}"), and its value.
type promText map[string]float64

// parseProm reads the sample lines of the text format, skipping comments.
func parseProm(r io.Reader) (promText, error) {
	m := promText{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the labels (label
		// values may hold spaces; an optional timestamp is not written by
		// client_golang).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m, s.Err()
}

// sum adds the samples of the metric name whose labels contain label
// (`result="ok"`; "" for every sample).
func (m promText) sum(name, label string) float64 {
	var t float64
	for k, v := range m {
		n, labels, _ := strings.Cut(k, "{")
		if n == name && strings.Contains(labels, label) {
			t += v
		}
	}
	return t
}

// scrape GETs a /metrics page.
func scrape(ctx context.Context, url string) (promText, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseProm(resp.Body)
}

// percentile is the q-quantile (0 ≤ q ≤ 1) of v by the nearest-rank
// method: the smallest value at least q of the values are at or below.
// NaN for no values.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}
