package fill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/metrics"
)

const segThreshold = 256 << 10

// segGroup is a Group that segments blobs over segThreshold in 4.
type segGroup struct {
	*fill.Group
	store     *disk.Store
	committed atomic.Int32
	m         *metrics.Metrics
}

func newSegGroup(t *testing.T, edit func(*fill.Options)) *segGroup {
	t.Helper()
	store, _, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sg := &segGroup{store: store, m: metrics.New(prometheus.NewRegistry())}
	opts := fill.Options{
		Sink:             store,
		Committed:        func(digest.Digest, int64) error { sg.committed.Add(1); return nil },
		ResumeBackoff:    time.Millisecond,
		SegmentThreshold: segThreshold,
		Segments:         4,
		Metrics:          sg.m,
	}
	if edit != nil {
		edit(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if sg.Group, err = fill.NewGroup(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sg.Wait() })
	return sg
}

// newSegFixture is a segGroup and a rangeServer of a blob of 4 ranges,
// with the sources over the server; set the server's fault or hold
// before the first request.
func newSegFixture(t *testing.T) (*segGroup, *rangeServer, fill.Source, fill.RangeSource) {
	blob, _ := randomBlob(t, 4*segThreshold)
	srv := newRangeServer(t, blob)
	open, ranged := sources(srv.client(t), srv.d)
	return newSegGroup(t, nil), srv, open, ranged
}

// stored waits for the fill of d to end and reports whether d is stored.
func (sg *segGroup) stored(t *testing.T, d digest.Digest) bool {
	t.Helper()
	sg.WaitFill(t, d)
	_, err := sg.store.Stat(context.Background(), d)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// followAll starts the fill of d and has n clients follow it from byte 0,
// each joining before a byte arrived; it returns what each read.
func followAll(t *testing.T, g *fill.Group, d digest.Digest, open fill.Source, ranged fill.RangeSource, n int) ([][]byte, []error) {
	t.Helper()
	fws := make([]*fill.Follower, n)
	var err error
	if fws[0], _, err = g.StartRanged(d, open, ranged); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if fws[i] = g.Follow(d); fws[i] == nil {
			t.Fatal("no fill to follow")
		}
	}
	got, errs := make([][]byte, n), make([]error, n)
	var wg sync.WaitGroup
	for i, fw := range fws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer fw.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got[i], errs[i] = readAll(ctx, fw, 0)
		}()
	}
	wg.Wait()
	return got, errs
}

// wantRanges is the Range headers of a segmented fetch of size bytes in
// ranges of segThreshold (the plan for sizes up to 4×segThreshold).
func wantRanges(size int64) []string {
	var out []string
	for start := int64(0); start < size; start += segThreshold {
		out = append(out, fmt.Sprintf("bytes=%d-%d", start, start+segThreshold-1))
	}
	return out
}

// TestSegmentedFillConcurrentRanges: a big blob arrives as 4 ranges open
// at once, each asking exactly its bytes, and every follower that joined
// at byte 0 reads the blob, which is stored.
func TestSegmentedFillConcurrentRanges(t *testing.T) {
	sg, srv, open, ranged := newSegFixture(t)
	blob, d := srv.blob, srv.d
	srv.hold = 4

	got, errs := followAll(t, sg.Group, d, open, ranged, 3)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], blob) {
			t.Errorf("follower %d: %d bytes, %v; want the blob", i, len(got[i]), errs[i])
		}
	}
	if !sg.stored(t, d) || sg.committed.Load() != 1 {
		t.Errorf("blob stored %v, committed %d times; want stored once", sg.stored(t, d), sg.committed.Load())
	}
	rs := srv.requests()
	slices.Sort(rs)
	if want := wantRanges(int64(len(blob))); !slices.Equal(rs, want) {
		t.Errorf("ranges asked %q, want %q", rs, want)
	}
	if c := srv.concurrency(); c != 4 {
		t.Errorf("%d ranges open at once, want 4", c)
	}
	if n := srv.sent.Load(); n != int64(len(blob)) {
		t.Errorf("the upstream sent %d bytes for a blob of %d", n, len(blob))
	}
	if n := testutil.ToFloat64(sg.m.Segments.Fills.WithLabelValues("segmented")); n != 1 {
		t.Errorf("wharf_fill_segmented_total{segmented} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(sg.m.Segments.Requests.WithLabelValues("segment")); n != 3 {
		t.Errorf("wharf_fill_segment_requests_total{segment} = %v, want 3", n)
	}
}

// TestSegmentedFillVerifiedBeforeVisible: a segment with a wrong byte
// fails the digest check, whether it is range 0 (hashed as it streams)
// or a later one (read back): every follower's read fails (none ends
// cleanly), and nothing is kept.
func TestSegmentedFillVerifiedBeforeVisible(t *testing.T) {
	for _, corrupt := range []int{0, 2} {
		t.Run(fmt.Sprint("range ", corrupt), func(t *testing.T) {
			sg, srv, open, ranged := newSegFixture(t)
			blob, d := srv.blob, srv.d
			srv.fault = func(_ int, rng string) rangeFault {
				return rangeFault{corrupt: rng == wantRanges(int64(len(blob)))[corrupt]}
			}
			got, errs := followAll(t, sg.Group, d, open, ranged, 3)
			for i := range got {
				if !errors.Is(errs[i], fill.ErrDigestMismatch) {
					t.Errorf("follower %d read %d bytes and %v, want ErrDigestMismatch", i, len(got[i]), errs[i])
				}
				if len(got[i]) >= len(blob) {
					t.Errorf("follower %d saw all %d bytes of a wrong blob", i, len(got[i]))
				}
			}
			if sg.stored(t, d) || sg.committed.Load() != 0 {
				t.Error("a blob with a wrong segment was kept")
			}
		})
	}
}

// TestSegmentedFillFollowersSeePrefix: bytes written ahead of a range
// still on its way are not readable; a follower gets the contiguous
// prefix only, and the rest once the missing range lands.
func TestSegmentedFillFollowersSeePrefix(t *testing.T) {
	sg := newSegGroup(t, nil)
	blob, d := randomBlob(t, 4*segThreshold)
	gate, drained := make(chan struct{}), make(chan struct{}, 4)
	ranged := func(ctx context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		end := min(offset+length, int64(len(blob)))
		var r io.Reader = &signalEOF{r: bytes.NewReader(blob[offset:end]), eof: drained}
		if offset == segThreshold { // the second range waits for the test
			r = &gated{r: r, gate: gate, after: 0, ctx: ctx}
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	fw, _, err := sg.StartRanged(d, (&source{blob: blob}).open, ranged)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	for range 3 { // ranges 1, 3 and 4 are written
		<-drained
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	got, err := readAll(ctx, fw, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !bytes.Equal(got, blob[:segThreshold]) {
		t.Fatalf("with the second range held, a follower read %d bytes and %v; want the first %d, then to wait", len(got), err, segThreshold)
	}
	close(gate)
	rest, err := readAll(context.Background(), fw, segThreshold)
	if err != nil || !bytes.Equal(rest, blob[segThreshold:]) {
		t.Fatalf("after the held range landed: %d bytes, %v", len(rest), err)
	}
}

// signalEOF sends on eof when its reader is drained.
type signalEOF struct {
	r   io.Reader
	eof chan struct{}
}

func (s *signalEOF) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof <- struct{}{}
	}
	return n, err
}

// TestSegmentedFillSmallBlob: a blob up to the threshold (an empty one
// included) takes the one request it took before, Range or not.
func TestSegmentedFillSmallBlob(t *testing.T) {
	for _, size := range []int{0, 100_000, segThreshold} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			sg := newSegGroup(t, nil)
			blob, d := randomBlob(t, size)
			srv := newRangeServer(t, blob)
			open, ranged := sources(srv.client(t), d)
			got, errs := followAll(t, sg.Group, d, open, ranged, 1)
			if errs[0] != nil || !bytes.Equal(got[0], blob) {
				t.Fatalf("%d bytes, %v", len(got[0]), errs[0])
			}
			if !sg.stored(t, d) {
				t.Error("blob not stored")
			}
			if rs := srv.requests(); len(rs) != 1 {
				t.Errorf("requests %q, want one", rs)
			}
			if n := testutil.ToFloat64(sg.m.Segments.Fills.WithLabelValues("segmented")); n != 0 {
				t.Errorf("a small blob was segmented")
			}
		})
	}
}

// TestSegmentedFillUnknownSize: a first range whose answer does not tell
// the blob's size is not segmented; where it ends, the rest comes in one
// stream from there.
func TestSegmentedFillUnknownSize(t *testing.T) {
	sg := newSegGroup(t, nil)
	blob, d := randomBlob(t, 3*segThreshold)
	src := &source{blob: blob}
	ranged := func(_ context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		return io.NopCloser(bytes.NewReader(blob[offset : offset+length])), -1, false, nil
	}
	got, errs := followAll(t, sg.Group, d, src.open, ranged, 1)
	if errs[0] != nil || !bytes.Equal(got[0], blob) {
		t.Fatalf("%d bytes, %v", len(got[0]), errs[0])
	}
	if !sg.stored(t, d) {
		t.Error("blob not stored")
	}
	if src.offsets[0] != segThreshold || len(src.offsets) != 1 {
		t.Errorf("the stream went on from %v, want [%d]", src.offsets, segThreshold)
	}
}

// TestSegmentPlan: the ranges cover the blob once, in order, from the
// first range; their count lets the workers finish together (N-1 while
// the first range is read, then N at a time); none is much bigger than
// the first. A total near MaxInt64 is planned without overflow, in
// constant work (only the ranges around the ends are looked at).
func TestSegmentPlan(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		size, first int64
		want        int64
	}{
		{64 * mib, 32 * mib, 4},
		{256 * mib, 32 * mib, 8},
		{1024 * mib, 32 * mib, 28},
		{32*mib + 1, 32 * mib, 2}, // one byte over: the rest is one range, not three of none
		{4 * segThreshold, segThreshold, 4},
		{4*segThreshold + 10, segThreshold, 4},
		{math.MaxInt64, 16 * mib, 439804651111},
		{math.MaxInt64 - 1, 64 << 10, 112589990684263},
	} {
		count, span := fill.Plan(tt.size, tt.first, 4)
		if count != tt.want || span(0) != [2]int64{0, tt.first} || span(count - 1)[1] != tt.size {
			t.Errorf("plan(%d, %d) = %d ranges %v…%v, want %d from [0 %d) to %d", tt.size, tt.first, count, span(0), span(count-1), tt.want, tt.first, tt.size)
		}
		for i := int64(1); i < count; i++ {
			if i == 100 && count > 200 {
				i = count - 100 // the middle is the same arithmetic
			}
			p, q := span(i-1), span(i)
			if q[0] != p[1] || q[1]-q[0] > tt.first+tt.first/4 || q[1] <= q[0] {
				t.Errorf("plan(%d, %d): range %d is %v after %v", tt.size, tt.first, i, q, p)
			}
		}
	}
}

// TestSegmentedFillClaimedTotalCostsNoMemory: a fill's state does not
// grow with the total the upstream claims (here 256 GiB, in a million
// ranges): the ranges are computed, and only those in flight are held.
func TestSegmentedFillClaimedTotalCostsNoMemory(t *testing.T) {
	sg := newSegGroup(t, nil)
	blob, d := randomBlob(t, segThreshold)
	ranged := func(_ context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		if offset > 0 {
			return nil, 0, false, errors.New("no such bytes")
		}
		return io.NopCloser(bytes.NewReader(blob)), 1 << 38, false, nil
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fw, _, err := sg.StartRanged(d, (&source{blob: blob}).open, ranged)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fw); err == nil {
		t.Fatal("a fill of bytes the upstream does not have succeeded")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("a fill allocated %d MiB for a claimed total of 256 GiB", grew>>20)
	}
}
