package fill_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/fill"
)

// BenchmarkSegmentedFetch fills a blob from a server that paces each
// connection to 25 MiB/s and answers each request after 50 ms, as a
// registry across a WAN whose connections are capped below the link:
// one stream, then 4 segments with a 32 MiB threshold, then with the
// default, 16 MiB (the first range, one threshold long, bounds a blob of
// a few thresholds: 64 MiB takes 2 ranges at 32 MiB, 4 at 16). It
// reports the rate a follower reads at (MB/s), the upstream bytes per
// blob byte (fetched/B) and the requests per fill.
//
//	go test ./cache/fill -run '^$' -bench SegmentedFetch -benchtime 2x
func BenchmarkSegmentedFetch(b *testing.B) {
	for _, size := range []int{64 << 20, 256 << 20} {
		blob, _ := randomBlob(b, size)
		srv := newRangeServer(b, blob)
		srv.fault = func(int, string) rangeFault {
			return rangeFault{latency: 50 * time.Millisecond, bytesPerSec: 25 << 20}
		}
		c := srv.client(b)
		for _, mode := range []struct {
			name      string
			threshold int64
		}{{"single", 0}, {"segmented-32MiB", 32 << 20}, {"segmented", fill.DefaultSegmentThreshold}} {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, mode.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				sent0, reqs0 := srv.sent.Load(), len(srv.requests())
				for range b.N {
					b.StopTimer()
					g, done := benchGroup(b, mode.threshold)
					open, ranged := sources(c, srv.d)
					b.StartTimer()
					fw, _, err := g.StartRanged(srv.d, open, ranged)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, fw.Reader(context.Background(), 0))
					if err != nil || n != int64(size) {
						b.Fatalf("read %d bytes, %v", n, err)
					}
					b.StopTimer()
					fw.Close()
					done()
				}
				b.ReportMetric(float64(srv.sent.Load()-sent0)/float64(size)/float64(b.N), "fetched/B")
				b.ReportMetric(float64(len(srv.requests())-reqs0)/float64(b.N), "requests/fill")
			})
		}
	}
}

// benchGroup is a Group on a store of its own (so each fill misses);
// done waits for its fill and removes the store.
func benchGroup(b *testing.B, threshold int64) (g *fill.Group, done func()) {
	dir, err := os.MkdirTemp("", "segbench")
	if err != nil {
		b.Fatal(err)
	}
	store, _, err := disk.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if g, err = fill.NewGroup(ctx, fill.Options{Sink: store, SegmentThreshold: threshold, Segments: 4}); err != nil {
		b.Fatal(err)
	}
	return g, func() {
		g.Wait()
		cancel()
		os.RemoveAll(dir)
	}
}
