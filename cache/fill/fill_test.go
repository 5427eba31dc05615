package fill_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/fill"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...) }

// source serves blob from offset, with hooks to inject the faults a test
// needs: a cut after some bytes, wrong bytes, or a gate that holds the rest.
type source struct {
	blob    []byte
	opens   atomic.Int32
	offsets []int64
	mu      sync.Mutex
	cutAt   int64         // >0: the first body ends with an error after this many bytes
	corrupt bool          // flip one byte
	gate    chan struct{} // non-nil: after the first 1 KiB, wait for close
}

func (s *source) open(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
	n := s.opens.Add(1)
	s.mu.Lock()
	s.offsets = append(s.offsets, offset)
	s.mu.Unlock()
	data := bytes.Clone(s.blob[offset:])
	if s.corrupt {
		data[len(data)/2] ^= 0xff
	}
	var r io.Reader = bytes.NewReader(data)
	if s.cutAt > 0 && n == 1 {
		r = io.MultiReader(io.LimitReader(r, s.cutAt), errReader{errors.New("connection reset")})
	}
	if s.gate != nil {
		r = &gated{r: r, gate: s.gate, after: 1024, ctx: ctx}
	}
	return io.NopCloser(r), int64(len(s.blob)), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type gated struct {
	r     io.Reader
	gate  chan struct{}
	after int
	sent  int
	ctx   context.Context
}

func (g *gated) Read(p []byte) (int, error) {
	if g.sent >= g.after {
		select {
		case <-g.gate:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	} else if len(p) > g.after-g.sent {
		p = p[:g.after-g.sent]
	}
	n, err := g.r.Read(p)
	g.sent += n
	return n, err
}

func newGroup(t *testing.T) (*fill.Group, *disk.Store, *atomic.Int32) {
	t.Helper()
	store, _, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	g, err := fill.NewGroup(ctx, fill.Options{
		Sink:          store,
		Committed:     func(digest.Digest, int64) error { committed.Add(1); return nil },
		ResumeBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); g.Wait() })
	return g, store, &committed
}

func randomBlob(t testing.TB, n int) ([]byte, digest.Digest) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

func readAll(ctx context.Context, fw *fill.Follower, offset int64) ([]byte, error) {
	if _, err := fw.Ready(ctx); err != nil {
		return nil, err
	}
	return io.ReadAll(fw.Reader(ctx, offset))
}

func TestFillOnceForConcurrentClients(t *testing.T) {
	g, store, committed := newGroup(t)
	blob, d := randomBlob(t, 3<<20)
	src := &source{blob: blob}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fw, err := g.Join(d, src.open)
			if errors.Is(err, fill.ErrCommitted) {
				return // finished before this client came: served from disk
			}
			if err != nil {
				errs <- err
				return
			}
			defer fw.Close()
			got, err := readAll(context.Background(), fw, 0)
			if err == nil && !bytes.Equal(got, blob) {
				err = errors.New("follower got different bytes")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := src.opens.Load(); n != 1 {
		t.Errorf("upstream opened %d times for 10 concurrent clients, want 1", n)
	}
	g.WaitFill(t, d)
	if _, err := store.Stat(context.Background(), d); err != nil {
		t.Errorf("blob not stored after fill: %v", err)
	}
	if committed.Load() != 1 {
		t.Errorf("committed %d times, want 1", committed.Load())
	}
}

func TestDigestMismatchKeepsNothing(t *testing.T) {
	g, store, committed := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	fw, err := g.Join(d, (&source{blob: blob, corrupt: true}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	got, err := readAll(context.Background(), fw, 0)
	if !errors.Is(err, fill.ErrDigestMismatch) {
		t.Fatalf("read of a corrupt blob ended with %v after %d bytes, want ErrDigestMismatch", err, len(got))
	}
	g.WaitFill(t, d)
	if _, err := store.Stat(context.Background(), d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt blob was stored: stat err %v", err)
	}
	if committed.Load() != 0 {
		t.Error("corrupt blob was indexed")
	}
}

func TestLeavingClientDoesNotCancelFill(t *testing.T) {
	g, store, _ := newGroup(t)
	blob, d := randomBlob(t, 2<<20)
	gate := make(chan struct{})
	src := &source{blob: blob, gate: gate}

	leaverCtx, leave := context.WithCancel(context.Background())
	leaver, err := g.Join(d, src.open)
	if err != nil {
		t.Fatal(err)
	}
	stayer, err := g.Join(d, src.open)
	if err != nil {
		t.Fatal(err)
	}
	// The leaver reads the first KiB, then disconnects mid-fill.
	if _, err := leaver.Ready(leaverCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(leaver.Reader(leaverCtx, 0), make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	leave()
	if _, err := leaver.Reader(leaverCtx, 1024).Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("leaver's read after cancel: %v, want context.Canceled", err)
	}
	leaver.Close()
	close(gate)

	got, err := readAll(context.Background(), stayer, 0)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the client that stayed got %d bytes, err %v; want the whole blob", len(got), err)
	}
	// Readers see the end once it verified, before it is stored: wait for the store.
	if err := stayer.Wait(context.Background()); err != nil {
		t.Fatalf("fill ended with %v", err)
	}
	stayer.Close()
	if _, err := store.Stat(context.Background(), d); err != nil {
		t.Errorf("blob not cached after its first client left: %v", err)
	}
}

func TestFirstByteBeforeUpstreamFinishes(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	gate := make(chan struct{})
	fw, err := g.Join(d, (&source{blob: blob, gate: gate}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fw.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// The upstream has sent 1 KiB and is held: the client must get it now.
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(fw.Reader(ctx, 0), buf); err != nil {
		t.Fatalf("first bytes not delivered while the upstream is still sending: %v", err)
	}
	if !bytes.Equal(buf, blob[:1024]) {
		t.Fatal("first bytes differ")
	}
	close(gate)
	if rest, err := io.ReadAll(fw.Reader(ctx, 1024)); err != nil || !bytes.Equal(rest, blob[1024:]) {
		t.Fatalf("rest: %d bytes, %v", len(rest), err)
	}
}

func TestFillResumesFromLastByte(t *testing.T) {
	g, store, _ := newGroup(t)
	blob, d := randomBlob(t, 1<<20)
	src := &source{blob: blob, cutAt: 300_000}
	fw, err := g.Join(d, src.open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	got, err := readAll(context.Background(), fw, 0)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("got %d bytes, err %v", len(got), err)
	}
	src.mu.Lock()
	offsets := src.offsets
	src.mu.Unlock()
	if len(offsets) != 2 || offsets[0] != 0 || offsets[1] != 300_000 {
		t.Errorf("upstream opened at offsets %v, want [0 300000] (resume, not restart)", offsets)
	}
	g.WaitFill(t, d)
	if _, err := store.Stat(context.Background(), d); err != nil {
		t.Errorf("resumed blob not stored: %v", err)
	}
}

func TestFollowerReadsFromOffset(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 256<<10)
	fw, err := g.Join(d, (&source{blob: blob}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	got, err := readAll(context.Background(), fw, 100_000)
	if err != nil || !bytes.Equal(got, blob[100_000:]) {
		t.Fatalf("ranged read: %d bytes, %v", len(got), err)
	}
}

func TestJoinAfterCommitServesDisk(t *testing.T) {
	g, _, _ := newGroup(t)
	blob, d := randomBlob(t, 1024)
	src := &source{blob: blob}
	fw, err := g.Join(d, src.open)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(context.Background(), fw, 0); err != nil {
		t.Fatal(err)
	}
	fw.Close()
	g.WaitFill(t, d)
	if _, err := g.Join(d, src.open); !errors.Is(err, fill.ErrCommitted) {
		t.Fatalf("join after commit: %v, want ErrCommitted", err)
	}
	if src.opens.Load() != 1 {
		t.Errorf("upstream opened %d times", src.opens.Load())
	}
}

// TestRetryAfterFailedFillStartsAnother: a client that retries as soon as
// its read of a failed fill ends starts a new fill, and does not join the
// failed one to read its error again.
func TestRetryAfterFailedFillStartsAnother(t *testing.T) {
	g, _, _ := newGroup(t)
	for i := range 50 { // the window, when open, is narrow: try it often
		blob, d := randomBlob(t, 4096)
		fw, err := g.Join(d, (&source{blob: blob, corrupt: true}).open)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(context.Background(), fw, 0)
		fw.Close()
		if !errors.Is(err, fill.ErrDigestMismatch) {
			t.Fatalf("read of a corrupt blob: %v, want ErrDigestMismatch", err)
		}
		fw, started, err := g.Start(d, (&source{blob: blob}).open)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(context.Background(), fw, 0)
		fw.Close()
		if !started || err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("retry %d: started %v, read %d bytes, %v; want a new fill of the blob", i, started, len(got), err)
		}
	}
}
