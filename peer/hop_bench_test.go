package peer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// BenchmarkManifestByTag measures what a peer hop adds to a pull by tag,
// on disk and on the bucket: a hit on the tag's owner, the peer request
// alone, and a replica that never saw the tag asking the owner for it
// (each iteration a tag new to it, which the owner holds).
func BenchmarkManifestByTag(b *testing.B) {
	for _, store := range []string{"disk", "s3"} {
		b.Run(store, func(b *testing.B) {
			var h *harness
			if store == "s3" {
				h, _ = newS3Harness(b, 2, time.Hour)
			} else {
				h = newHarness(b, 2, time.Hour, nil)
			}
			benchHop(b, h)
		})
	}
}

func benchHop(b *testing.B, h *harness) {
	a, other := h.replicas[0], h.replicas[1]
	img := upstreamtest.RandomImage(b, 1, 1024, upstreamtest.OCIManifest)
	upstreamtest.Push(b, h.reg, repo.Path+":seed", img)
	raw, err := img.RawManifest()
	if err != nil {
		b.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	next := 0
	// seed tags n new tags that a owns in the registry, each fetched
	// once through a, as the owner holds them before another asks.
	seed := func(n int) []string {
		var tags []string
		for len(tags) < n {
			next++
			tag := fmt.Sprintf("t%d", next)
			if h.owner("tag\x00"+repo.Upstream+"/"+repo.Path+":"+tag) != 0 {
				continue
			}
			req, _ := http.NewRequest(http.MethodPut, h.reg.URL+"/v2/"+repo.Path+"/manifests/"+tag, bytes.NewReader(raw))
			req.Header.Set("Content-Type", string(mt))
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Fatalf("PUT %s: %s", tag, resp.Status)
			}
			if _, err := a.cache.Manifest(b.Context(), repo, tag, tagAccept); err != nil {
				b.Fatal(err)
			}
			tags = append(tags, tag)
		}
		return tags
	}
	hits := seed(16)
	b.Run("hit-on-owner", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := a.cache.Manifest(b.Context(), repo, hits[i%len(hits)], tagAccept); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("peer-request", func(b *testing.B) {
		q := repoQuery(repo.Upstream, repo.Path).Encode()
		i := 0
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+a.addr+manifestsPath+hits[i%len(hits)]+"?"+q, nil)
			req.Header.Set("Authorization", "Bearer "+testSecret)
			req.Header["Accept"] = tagAccept
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("peer request: %s", resp.Status)
			}
			i++
		}
	})
	b.Run("origin-get", func(b *testing.B) {
		var took []time.Duration
		defer func() { reportMedian(b, took) }()
		i := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := other.origin.GetManifest(b.Context(), repo.Path, hits[i%len(hits)], tagAccept); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
			i++
		}
	})
	b.Run("via-peer", func(b *testing.B) {
		tags := seed(b.N)
		took := make([]time.Duration, 0, b.N)
		defer func() { reportMedian(b, took) }()
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			m, err := other.cache.Manifest(b.Context(), repo, tags[i], tagAccept)
			took = append(took, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if !m.Fetched {
				b.Fatalf("%s was a hit on the other replica", tags[i])
			}
		}
	})
}

// reportMedian reports the median of took, the figure a latency target
// is set for: a loaded machine's stalls move the mean far more.
func reportMedian(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
}
