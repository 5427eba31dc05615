package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestServeSegmentsBigBlobs: serve passes the upstream client's ranges
// through the pull-only origin it wraps, so a layer over
// --upstream-segment-threshold from an upstream that counts as far
// arrives in segments; at 0 it is one stream, and so it is from a near
// upstream (one that answers within --upstream-far-latency). Without
// GetBlobRange on that wrapper segmentation is silently off for every
// mirrored upstream, which this catches.
func TestServeSegmentsBigBlobs(t *testing.T) {
	const segmented = `wharf_fill_segmented_total{result="segmented"}`
	for _, tt := range []struct {
		name  string
		flags []string
		want  float64
	}{
		{"far upstream, threshold 1MiB", []string{"--upstream-segment-threshold", "1MiB", "--upstream-far-latency", "0"}, 1},
		{"far upstream, threshold 0", []string{"--upstream-segment-threshold", "0", "--upstream-far-latency", "0"}, 0},
		{"near upstream, threshold 1MiB", []string{"--upstream-segment-threshold", "1MiB", "--upstream-far-latency", "10s"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t)
			img := upstreamtest.RandomImage(t, 1, 5<<20, upstreamtest.OCIManifest)
			upstreamtest.Push(t, reg, "team/big:v1", img)
			addr, stop := serveFor(t, reg.URL, t.TempDir(), append([]string{"--prefetch=false"}, tt.flags...)...)
			defer stop()
			ref, err := name.ParseReference(addr+"/team/big:v1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			pulled, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(pulled); err != nil {
				t.Fatal(err)
			}
			if tt.want == 0 {
				if body := metricsText(t, addr); strings.Contains(body, "wharf_fill_segment") {
					t.Errorf("%s, yet /metrics counts segments:\n%s", tt.name, body)
				}
				return
			}
			if got := metricValue(t, addr, segmented); got != tt.want {
				t.Errorf("%s = %v after pulling a 5 MiB layer, want %v", segmented, got, tt.want)
			}
		})
	}
}

// metricsText is wharf's /metrics page.
func metricsText(t *testing.T, addr string) string {
	t.Helper()
	return pageText(t, addr, "/metrics")
}

// pageText is what wharf at addr answers a GET of path with.
func pageText(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
