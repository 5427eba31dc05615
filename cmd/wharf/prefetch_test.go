package main

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/statuspage/statuspagetest"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestServePrefetches: serve wires prefetch in by default, so a manifest
// GET alone brings the image's config and layers (counted in /metrics)
// from an upstream that counts as far; one that answers within
// --upstream-far-latency is near, and gets nothing prefetched (counted
// near_upstream); --prefetch=false leaves the blobs to the client's pull.
func TestServePrefetches(t *testing.T) {
	const (
		fetched = `wharf_prefetch_blobs_total{result="fetched"}`
		held    = `wharf_prefetch_blobs_total{result="held"}`
		near    = `wharf_prefetch_blobs_total{result="near_upstream"}`
	)
	tests := []struct {
		name     string
		flags    []string
		count    string // the result the image's 4 blobs are counted under; "" for none
		distance string // as the status page shows the upstream
	}{
		{"far upstream", []string{"--prefetch-concurrency", "2", "--upstream-far-latency", "0"}, fetched, "far"},
		// 127.0.0.1 is near under the default 10ms too; 10s keeps a busy
		// machine's slow answer from making it far.
		{"near upstream", []string{"--prefetch-concurrency", "2", "--upstream-far-latency", "10s"}, near, "near"},
		{"switched off", []string{"--prefetch=false", "--upstream-far-latency", "0"}, "", "far"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t)
			img := upstreamtest.RandomImage(t, 3, 8<<10, upstreamtest.OCIManifest)
			upstreamtest.Push(t, reg, "team/app:v1", img)
			addr, stop := serveFor(t, reg.URL, t.TempDir(), tt.flags...)
			defer stop()
			ref, err := name.ParseReference(addr+"/team/app:v1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := remote.Get(ref); err != nil {
				t.Fatal(err)
			}
			if got := distanceShown(t, addr); got != tt.distance {
				t.Errorf("the status page shows the upstream %q, want %q", got, tt.distance)
			}
			if tt.count != "" { // config and 3 layers, counted as the manifest is handed over
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				timeout := time.After(15 * time.Second)
				for metricValue(t, addr, tt.count) != 4 {
					select {
					case <-tick.C:
					case <-timeout:
						t.Fatalf("%s = %v, never 4", tt.count, metricValue(t, addr, tt.count))
					}
				}
				if tt.count == fetched {
					return
				}
			}
			pulled, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(pulled); err != nil {
				t.Fatal(err)
			}
			if f, h := metricValue(t, addr, fetched), metricValue(t, addr, held); f != 0 || h != 0 {
				t.Errorf("%s: fetched %v, held %v; want 0, 0", tt.name, f, h)
			}
		})
	}
}

// TestNoPrefetcherOfflineOrOff: offline (no upstream to ask) or switched
// off, serve builds no prefetcher, and hands proxy a nil interface (a
// nil *Prefetcher in it would not be nil).
func TestNoPrefetcherOfflineOrOff(t *testing.T) {
	yes, no := true, false
	for _, cfg := range []config.Config{
		func() config.Config { c := config.Default(); c.Offline = &yes; return c }(),
		func() config.Config { c := config.Default(); c.Upstream.Prefetch = &no; return c }(),
	} {
		pf, err := (&upstreams{}).prefetcher(t.Context(), cfg, nil, nil, nil)
		if pf != nil || err != nil {
			t.Errorf("offline %v, prefetch %v: prefetcher %v, %v; want none", cfg.OfflineOn(), cfg.Upstream.PrefetchOn(), pf, err)
		}
		if opt := prefetchOption(pf); opt != nil {
			t.Errorf("offline %v, prefetch %v: proxy.Options.Prefetch is %#v, want nil", cfg.OfflineOn(), cfg.Upstream.PrefetchOn(), opt)
		}
	}
}

// distanceShown is the distance the status page at addr gives its one
// upstream: "near" or "far".
func distanceShown(t *testing.T, addr string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(pageText(t, addr, "/")))
	if err != nil {
		t.Fatal(err)
	}
	row := statuspagetest.TextByID(doc, "upstreams")
	near, far := strings.Contains(row, "near"), strings.Contains(row, "far")
	switch {
	case near && !far:
		return "near"
	case far && !near:
		return "far"
	}
	t.Fatalf("the status page's upstreams table gives no one distance: %q", row)
	return ""
}
