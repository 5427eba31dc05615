package main

import (
	"bufio"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// localFiles are the content files in dir's blobs/ (the local tier with
// storage.s3), by hex digest, with their sizes.
func localFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		out[e.Name()] = fi.Size()
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// metricValue reads one series ("name" or `name{label="v"}`) from the
// /metrics of the wharf at addr; a series that is not there fails t.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics (%v)", series, sc.Err())
	return 0
}

// waitMetric waits until series reaches at least want, and returns it.
func waitMetric(t *testing.T, addr, series string, want float64) float64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if v := metricValue(t, addr, series); v >= want {
			return v
		} else if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 30s, want %v", series, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// s3Serve is a wharf on a fresh bucket of the shared MinIO in front of a
// real upstream registry holding the images given.
type s3Serve struct {
	store []string // --config and --data: what serve and the store commands share
	serve []string // serve's arguments
	dir   string
	keys  func() []string // the bucket's keys under mirror/
}

func newS3Serve(t *testing.T, images map[string]v1.Image, extra ...string) s3Serve {
	t.Helper()
	srv := s3srv.Get(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	for ref, img := range images {
		upstreamtest.Push(t, reg, ref, img)
	}
	dir := t.TempDir()
	store := []string{"--config", s3ConfigFile(t, srv.Endpoint, bucket, "mirror", srv.User, srv.Key), "--data", dir}
	return s3Serve{
		store: store, dir: dir,
		serve: append(append([]string{"--upstream", reg.URL}, store...), extra...),
		keys:  func() []string { return srv.Keys(t, bucket, "mirror/") },
	}
}

// TestMaxSizeCapsLocalCopiesOnS3: with storage.s3, --max-size caps the
// copies in the data directory, not the content: an image larger than it
// is whole in the bucket, and the data directory holds at most the cap
// (and one blob past it, the one whose arrival evicted).
func TestMaxSizeCapsLocalCopiesOnS3(t *testing.T) {
	const capBytes, layer = 2 << 20, 1 << 20
	img := upstreamtest.RandomImage(t, 3, layer, upstreamtest.OCIManifest)
	s := newS3Serve(t, map[string]v1.Image{"team/big:v1": img}, "--max-size", "2MiB")
	logs := newLogSink()
	addr, stop := serveLogged(t, logs, s.serve...)
	pullThrough(t, addr, "team/big:v1")
	waitFillsStored(t, addr)
	evicted := metricValue(t, addr, "wharf_tier_local_evictions_total")
	stop()
	keys := s.keys()
	for _, d := range contentDigests(t, img) {
		if !slices.Contains(keys, s3Key("mirror", d)) {
			t.Errorf("%s is not in the bucket: --max-size evicted it from the bucket", d)
		}
	}
	var total int64
	for _, n := range localFiles(t, s.dir) {
		total += n
	}
	if total > capBytes+layer || evicted == 0 {
		t.Errorf("the data directory holds %d bytes after %v local evictions; want at most %d (the cap and one layer), some evicted",
			total, evicted, capBytes+layer)
	}
	if !slices.ContainsFunc(logs.all(), func(e logEntry) bool {
		return e.Msg == "wharf serving" && e.LocalMaxSize == "2MiB" && e.S3MaxSize == "0"
	}) {
		t.Errorf("the start-up log does not name both caps:\n%s", logs.text())
	}
}

// TestS3MaxSizeEvictsFromTheBucket: storage.s3.maxSize caps the content
// in the bucket: past it, eviction deletes the least recently used
// image's objects and keeps the newest image whole.
func TestS3MaxSizeEvictsFromTheBucket(t *testing.T) {
	old := upstreamtest.RandomImage(t, 2, 1<<20, upstreamtest.OCIManifest)
	recent := upstreamtest.RandomImage(t, 2, 1<<20, upstreamtest.OCIManifest)
	s := newS3Serve(t, map[string]v1.Image{"team/old:v1": old, "team/recent:v1": recent}, "--storage-s3-max-size", "3MiB")
	addr, stop := serveArgs(t, s.serve...)
	defer stop()
	pullThrough(t, addr, "team/old:v1")
	waitFillsStored(t, addr)
	pullThrough(t, addr, "team/recent:v1")
	waitFillsStored(t, addr)
	oldLayers := contentDigests(t, old)[2:]
	for deadline := time.Now().Add(30 * time.Second); ; {
		keys := s.keys()
		if !slices.ContainsFunc(oldLayers, func(d v1.Hash) bool { return slices.Contains(keys, s3Key("mirror", d)) }) {
			for _, d := range contentDigests(t, recent) {
				if !slices.Contains(keys, s3Key("mirror", d)) {
					t.Errorf("the newest image's %s was evicted from the bucket", d)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the older image's layers are still in the bucket past storage.s3.maxSize: %q", keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStoreCommandsReadThroughOnS3: a store command (verify here, which
// reads every object) reads the bucket without copying what it reads
// into the data directory: no promotion starts, however many it reads.
func TestStoreCommandsReadThroughOnS3(t *testing.T) {
	img := upstreamtest.RandomImage(t, 2, 64<<10, upstreamtest.OCIManifest)
	s := newS3Serve(t, map[string]v1.Image{"team/app:v1": img})
	addr, stop := serveArgs(t, s.serve...)
	pullThrough(t, addr, "team/app:v1")
	waitFillsStored(t, addr)
	stop()
	if err := os.RemoveAll(filepath.Join(s.dir, "blobs")); err != nil {
		t.Fatal(err)
	}

	// What withStore does, with metrics to count the tier's work: Close
	// waits for every promotion, and each one that started is counted.
	cfg, err := config.Load(s.store, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	st, err := openStore(context.Background(), cfg, cache.Options{Logger: quietLogger(&strings.Builder{}), Metrics: m}, readThrough)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Verify(context.Background(), st.Cache, inspect.VerifyOptions{})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil || rep.Checked != len(contentDigests(t, img)) || len(rep.Corrupt) != 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	var promotions float64
	for _, r := range []string{"ok", "corrupt", "error"} {
		promotions += testutil.ToFloat64(m.TierPromotions.WithLabelValues(r))
	}
	if reads := testutil.ToFloat64(m.TierSharedReads); promotions != 0 || reads < float64(rep.Checked) {
		t.Errorf("verify read the bucket %v times and started %v promotions; want every object read, none promoted", reads, promotions)
	}
	if local := localFiles(t, s.dir); len(local) != 0 {
		t.Errorf("verify copied content into the data directory: %v", local)
	}
	// And the command itself.
	if out, err := runCmd(t, append([]string{"verify"}, s.store...)...); err != nil || !strings.Contains(out, "; 0 corrupt") {
		t.Fatalf("wharf verify: %v\n%s", err, out)
	}
	if local := localFiles(t, s.dir); len(local) != 0 {
		t.Errorf("wharf verify copied content into the data directory: %v", local)
	}
}

// TestSecondCommandOnS3DataDirSweepsNothing: with storage.s3 the stores
// open (and sweep their staging areas) before the cache takes Badger's
// lock, so the data directory's own lock must refuse a second wharf first:
// a verify beside a running serve must leave the serve's staged fills
// alone.
func TestSecondCommandOnS3DataDirSweepsNothing(t *testing.T) {
	s := newS3Serve(t, nil)
	cfg, err := config.Load(s.store, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	held, err := openStore(context.Background(), cfg, cache.Options{Logger: quietLogger(&strings.Builder{})}, copyOnRead)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	f, err := held.TempFile() // what a fill in progress stages in
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := runCmd(t, append([]string{"verify"}, s.store...)...)
	if err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Fatalf("verify on a data directory in use: %v (output %q); want it refused as in use", err, out)
	}
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("the refused verify swept the running store's staged file: %v", err)
	}
}
