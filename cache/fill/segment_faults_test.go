package fill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/fill"
)

// TestSegmentedFillRangeIgnored: an upstream that answers the first range
// with the whole blob (200) is read as one stream: one request, no byte
// twice.
func TestSegmentedFillRangeIgnored(t *testing.T) {
	sg, srv, open, ranged := newSegFixture(t)
	blob, d := srv.blob, srv.d
	srv.fault = func(int, string) rangeFault { return rangeFault{ignoreRange: true} }

	got, errs := followAll(t, sg.Group, d, open, ranged, 2)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], blob) {
			t.Errorf("follower %d: %d bytes, %v", i, len(got[i]), errs[i])
		}
	}
	if !sg.stored(t, d) {
		t.Error("blob not stored")
	}
	if rs := srv.requests(); len(rs) != 1 || srv.sent.Load() != int64(len(blob)) {
		t.Errorf("requests %q, %d bytes sent; want one, the blob's %d", rs, srv.sent.Load(), len(blob))
	}
	if n := testutil.ToFloat64(sg.m.Segments.Fills.WithLabelValues("range_ignored")); n != 1 {
		t.Errorf("wharf_fill_segmented_total{range_ignored} = %v, want 1", n)
	}
}

// TestSegmentedFillResumesBrokenSegment: a range cut mid-way is asked
// again from its last byte received to its end, and the blob is whole.
func TestSegmentedFillResumesBrokenSegment(t *testing.T) {
	sg, srv, open, ranged := newSegFixture(t)
	blob, d := srv.blob, srv.d
	cut := fmt.Sprintf("bytes=%d-%d", 2*segThreshold, 3*segThreshold-1)
	srv.fault = func(_ int, rng string) rangeFault {
		if rng == cut {
			return rangeFault{cutAfter: 100_000}
		}
		return rangeFault{}
	}

	got, errs := followAll(t, sg.Group, d, open, ranged, 2)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], blob) {
			t.Fatalf("follower %d: %d bytes, %v", i, len(got[i]), errs[i])
		}
	}
	if !sg.stored(t, d) {
		t.Error("resumed blob not stored")
	}
	rs := srv.requests()
	resumes := slices.DeleteFunc(slices.Clone(rs), func(r string) bool { return slices.Contains(wantRanges(int64(len(blob))), r) })
	if len(rs) != 5 || len(resumes) != 1 {
		t.Fatalf("ranges asked %q, want the 4 and one resume", rs)
	}
	var from, to int64
	if _, err := fmt.Sscanf(resumes[0], "bytes=%d-%d", &from, &to); err != nil || from <= 2*segThreshold || from > 2*segThreshold+100_000 || to != 3*segThreshold-1 {
		t.Errorf("resume asked %q, want from the break (after %d) to %d", resumes[0], 2*segThreshold, 3*segThreshold-1)
	}
}

// TestSegmentedFillContentRangeMismatch: a range answered with other
// bytes than asked fails the fill; nothing is kept, followers fail.
func TestSegmentedFillContentRangeMismatch(t *testing.T) {
	sg, srv, open, ranged := newSegFixture(t)
	blob, d := srv.blob, srv.d
	srv.fault = func(i int, _ string) rangeFault {
		if i == 1 {
			return rangeFault{contentRange: fmt.Sprintf("bytes 0-%d/%d", segThreshold-1, len(blob))}
		}
		return rangeFault{}
	}

	got, errs := followAll(t, sg.Group, d, open, ranged, 2)
	for i := range got {
		if errs[i] == nil || len(got[i]) >= len(blob) {
			t.Errorf("follower %d: %d bytes, %v; want an error", i, len(got[i]), errs[i])
		}
	}
	if sg.stored(t, d) || sg.committed.Load() != 0 {
		t.Error("a blob with a misplaced range was kept")
	}
}

// TestSegmentedFillStalledSegment: a range that stops sending is given up
// after StallTimeout and asked again from where it stopped.
func TestSegmentedFillStalledSegment(t *testing.T) {
	sg := newSegGroup(t, func(o *fill.Options) { o.StallTimeout = 200 * time.Millisecond })
	blob, _ := randomBlob(t, 4*segThreshold)
	var stalls atomic.Int32
	var mu sync.Mutex
	var offsets []int64
	ranged := func(ctx context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		mu.Lock()
		offsets = append(offsets, offset)
		mu.Unlock()
		var r io.Reader = bytes.NewReader(blob[offset : offset+length])
		if offset == 3*segThreshold && stalls.Add(1) == 1 {
			r = &gated{r: r, gate: make(chan struct{}), after: 1000, ctx: ctx} // never opened
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	readsBlob(t, sg, blob, ranged)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(offsets, 3*segThreshold+1000) {
		t.Errorf("ranges asked from %v; want a resume from %d", offsets, 3*segThreshold+1000)
	}
}

// fullSink is a disk store whose temp files are a full disk: /dev/full,
// through a symlink of its own (the fill removes a failed temp file by
// its name, and must remove the link, not the device).
type fullSink struct {
	*disk.Store
	dir string
	n   atomic.Int32
}

func (s *fullSink) TempFile() (*os.File, error) {
	link := filepath.Join(s.dir, fmt.Sprint("full", s.n.Add(1)))
	if err := os.Symlink("/dev/full", link); err != nil {
		return nil, err
	}
	return os.OpenFile(link, os.O_RDWR, 0)
}

// TestSegmentedFillNoSpaceReadsDirect: a segmented fill that meets a full
// disk stops storing, and its followers read the blob on from the
// upstream at their own offsets, as from a fill in one stream.
func TestSegmentedFillNoSpaceReadsDirect(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	var noSpace atomic.Int32
	sink := &fullSink{dir: t.TempDir()}
	sg := newSegGroup(t, func(o *fill.Options) {
		store, _, err := disk.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sink.Store = store
		o.Sink, o.NoSpace = sink, func() { noSpace.Add(1) }
	})
	sg.store = sink.Store
	srv := followStopped(t, sg)
	if sg.stored(t, srv.d) || noSpace.Load() != 1 {
		t.Errorf("stored %v, NoSpace called %d times; want nothing stored, NoSpace once", sg.stored(t, srv.d), noSpace.Load())
	}
	if n := testutil.ToFloat64(sg.m.Fills.WithLabelValues("no_space")); n != 1 {
		t.Errorf("wharf_fills_total{no_space} = %v, want 1", n)
	}
}

// TestSegmentedFillTooLargeNotStaged: a blob whose first range tells a
// size Keep refuses is neither segmented nor written to tmp/: followers
// read it from the upstream (ErrTooLarge).
func TestSegmentedFillTooLargeNotStaged(t *testing.T) {
	var temps atomic.Int32
	sg := newSegGroup(t, func(o *fill.Options) {
		o.Keep = func(size int64) bool { return size < 4*segThreshold }
		o.Sink = countingSink{o.Sink, &temps}
	})
	srv := followStopped(t, sg)
	if sg.stored(t, srv.d) || temps.Load() != 0 {
		t.Errorf("stored %v, %d temp files; want nothing staged", sg.stored(t, srv.d), temps.Load())
	}
	want := []string{wantRanges(int64(len(srv.blob)))[0], "", ""} // the first range, then each follower's GET
	if rs := srv.requests(); !slices.Equal(rs, want) {
		t.Errorf("requests %q, want %q", rs, want)
	}
	if n := testutil.ToFloat64(sg.m.Fills.WithLabelValues("not_kept")); n != 1 {
		t.Errorf("wharf_fills_total{not_kept} = %v, want 1", n)
	}
}

// countingSink counts the temp files a fill makes.
type countingSink struct {
	fill.Sink
	n *atomic.Int32
}

func (s countingSink) TempFile() (*os.File, error) {
	s.n.Add(1)
	return s.Sink.TempFile()
}

// followStopped has two followers read a blob of 4 ranges whose fill
// stops storing, and fails for each that did not get it all from the
// upstream; it returns the upstream.
func followStopped(t *testing.T, sg *segGroup) *rangeServer {
	t.Helper()
	blob, _ := randomBlob(t, 4*segThreshold)
	srv := newRangeServer(t, blob)
	open, ranged := sources(srv.client(t), srv.d)
	got, errs := followAll(t, sg.Group, srv.d, open, ranged, 2)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], blob) {
			t.Errorf("follower %d: %d bytes, %v; want the blob from the upstream", i, len(got[i]), errs[i])
		}
	}
	return srv
}

// TestSegmentedFillBoundsBytesAhead: while range 0 trickles, the other
// workers fetch at most 2N ranges (N workers) ahead of the prefix, then
// wait for it, instead of landing the whole blob where no follower can
// read it yet.
func TestSegmentedFillBoundsBytesAhead(t *testing.T) {
	sg := newSegGroup(t, nil)
	blob, d := randomBlob(t, 16*segThreshold) // 16 ranges of segThreshold
	gate, drained := make(chan struct{}), make(chan struct{}, 16)
	var once sync.Once
	var ahead atomic.Int64 // the furthest range asked while range 0 was held
	ranged := func(ctx context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		select {
		case <-gate:
		default:
			for i := offset / segThreshold; ; {
				if cur := ahead.Load(); cur >= i || ahead.CompareAndSwap(cur, i) {
					break
				}
			}
			if offset/segThreshold >= 8 {
				once.Do(func() { close(gate) }) // the bound is broken: no need to wait
			}
		}
		end := min(offset+length, int64(len(blob)))
		var r io.Reader = &signalEOF{r: bytes.NewReader(blob[offset:end]), eof: drained}
		if offset == 0 {
			r = &gated{r: r, gate: gate, after: 1000, ctx: ctx}
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	fw, _, err := sg.StartRanged(d, (&source{blob: blob}).open, ranged)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	for range 7 { // ranges 1 to 7 landed
		<-drained
	}
	select { // a worker that asks for range 8 now does so at once: 300ms bounds the wait, it syncs nothing
	case <-gate:
	case <-time.After(300 * time.Millisecond):
		once.Do(func() { close(gate) })
	}
	got, err := readAll(context.Background(), fw, 0)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if n := ahead.Load(); n != 7 {
		t.Errorf("with range 0 held, ranges up to %d were asked; want up to 7 (2×4 ranges from the prefix)", n)
	}
}

// TestSegmentedFillResumeFromZeroIsNotFirst: only the fill's first
// request is marked first; range 0 broken before its first byte is
// asked again from 0 as a resume (a peer must not answer ErrNoRanges to
// it, nor an upstream read a 416 to it as an empty blob).
func TestSegmentedFillResumeFromZeroIsNotFirst(t *testing.T) {
	sg := newSegGroup(t, nil)
	blob, _ := randomBlob(t, 4*segThreshold)
	var mu sync.Mutex
	var firsts []string
	ranged := func(_ context.Context, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			firsts = append(firsts, fmt.Sprint(offset))
		}
		var r io.Reader = bytes.NewReader(blob[offset : offset+length])
		if offset == 0 && len(firsts) == 1 && first {
			r = errReader{errors.New("connection reset")} // range 0 breaks before a byte
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	readsBlob(t, sg, blob, ranged)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(firsts, []string{"0"}) {
		t.Errorf("requests marked first from %v; want the one from 0", firsts)
	}
	if n := testutil.ToFloat64(sg.m.Segments.Requests.WithLabelValues("resume")); n != 1 {
		t.Errorf("wharf_fill_segment_requests_total{resume} = %v, want 1", n)
	}
}

// readsBlob has one follower read blob through a fill of sg from ranged,
// and fails t unless it reads it all.
func readsBlob(t *testing.T, sg *segGroup, blob []byte, ranged fill.RangeSource) {
	t.Helper()
	got, errs := followAll(t, sg.Group, digest.FromBytes(blob), (&source{blob: blob}).open, ranged, 1)
	if errs[0] != nil || !bytes.Equal(got[0], blob) {
		t.Fatalf("%d bytes, %v", len(got[0]), errs[0])
	}
}

// TestSegmentedFillSharesResumes: Options.Resumes bounds the resumes of
// the whole fill, not of each segment: two ranges that break twice each
// need 4, more than 3.
func TestSegmentedFillSharesResumes(t *testing.T) {
	sg := newSegGroup(t, func(o *fill.Options) { o.Resumes = 3 })
	blob, d := randomBlob(t, 4*segThreshold)
	var mu sync.Mutex
	breaks := map[int64]int{} // by the end of the range asked
	ranged := func(_ context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		var r io.Reader = bytes.NewReader(blob[offset : offset+length])
		if end := offset + length; end >= 3*segThreshold && breaks[end] < 2 {
			breaks[end]++
			r = io.MultiReader(io.LimitReader(r, 1000), errReader{errors.New("connection reset")})
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	fw, _, err := sg.StartRanged(d, (&source{blob: blob}).open, ranged)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fw); err == nil {
		t.Error("a fill that needed 4 resumes of 3 succeeded")
	}
	if n := testutil.ToFloat64(sg.m.Segments.Requests.WithLabelValues("resume")); n > 3 {
		t.Errorf("wharf_fill_segment_requests_total{resume} = %v, want at most 3", n)
	}
}

// TestSegmentedFillHeaderFaults: answers whose headers do not fit the
// segmented fetch fail the fill, and nothing is kept: a total that
// changes between ranges, a 200 (Range ignored) to a later range, and a
// chunked 206 that sends more bytes than asked.
func TestSegmentedFillHeaderFaults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(size int) rangeFault
		is    error // the fill's error, when it has a sentinel
	}{
		{"total changes", func(size int) rangeFault {
			return rangeFault{contentRange: fmt.Sprintf("bytes %d-%d/%d", segThreshold, 2*segThreshold-1, size+1)}
		}, fill.ErrSizeMismatch},
		{"200 to a later range", func(int) rangeFault { return rangeFault{ignoreRange: true} }, nil},
		{"more bytes than asked", func(int) rangeFault { return rangeFault{extra: 1000} }, fill.ErrSizeMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sg, srv, open, ranged := newSegFixture(t)
			srv.fault = func(_ int, rng string) rangeFault {
				if rng == wantRanges(int64(len(srv.blob)))[1] {
					return tt.fault(len(srv.blob))
				}
				return rangeFault{}
			}
			fw, _, err := sg.StartRanged(srv.d, open, ranged)
			if err != nil {
				t.Fatal(err)
			}
			err = waitErr(t, fw)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("fill ended with %v, want a failure (%v)", err, tt.is)
			}
			if sg.stored(t, srv.d) || sg.committed.Load() != 0 {
				t.Error("a blob with a faulty range was kept")
			}
		})
	}
}
