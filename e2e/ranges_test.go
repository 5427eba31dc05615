package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestManyRangesAnsweredWhole: a Range header with more than a few ranges,
// or with overlapping ones, is answered with the whole blob (200), while
// filling and from the cache, instead of a multipart response many times
// the request's size. Two disjoint ranges still get their multipart 206.
func TestManyRangesAnsweredWhole(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	const size = 64 << 10
	d := pushBlobImage(t, reg, "app/ranges:v1", size)
	// The upstream stalls half-way, so that the requests sent meanwhile are
	// served from the running fill.
	faulty.SetFault(onFirstBlobGet(d, upstreamtest.Fault{StallAfter: size / 2, Stall: 2 * time.Second}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	url := m.URL + "/v2/app/ranges/blobs/" + d.String()

	var many []string
	for i := 0; i < 10_000; i++ {
		many = append(many, fmt.Sprintf("%d-%d", 2*i%size, 2*i%size))
	}
	manyRanges := "bytes=" + strings.Join(many, ",")
	cases := []struct {
		name, rng string
		status    int
	}{
		{"10,000 one-byte ranges", manyRanges, http.StatusOK},
		{"9 disjoint ranges", "bytes=0-0,10-10,20-20,30-30,40-40,50-50,60-60,70-70,80-80", http.StatusOK},
		{"overlapping ranges", "bytes=0-99,50-149", http.StatusOK},
		{"the same range twice", "bytes=100-199,100-199", http.StatusOK},
		{"suffix overlapping a range", "bytes=-100," + itoa(size-50) + "-", http.StatusOK},
	}
	check := func(when string) {
		t.Helper()
		resps := make([]*http.Response, len(cases))
		for i, c := range cases { // all sent before any body is read
			resps[i] = get(t, url, "Range", c.rng)
		}
		for i, c := range cases {
			resp := resps[i]
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%s, %s: %v", when, c.name, err)
			}
			if resp.StatusCode != c.status || sha256Hex(b) != d.Hex {
				t.Errorf("%s, %s: status %d, %d bytes (%s); want %d and the whole blob of %d bytes",
					when, c.name, resp.StatusCode, len(b), resp.Header.Get("Content-Type"), c.status, size)
			}
		}
	}
	check("while filling")
	waitFills(t, m)
	check("from the cache")

	// A few disjoint ranges are still served as ranges from the cache.
	resp := get(t, url, "Range", "bytes=0-9,20-29")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") || len(b) > 1024 {
		t.Errorf("two disjoint ranges: status %d, %s, %d bytes; want a small multipart 206",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
}
