package tier_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
)

var ctx = context.Background()

func openDisk(t *testing.T, dir string) *disk.Store {
	t.Helper()
	s, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTier opens a tier closed when t ends.
func newTier(t *testing.T, local *disk.Store, shared tier.Shared, opts tier.Options) *tier.Store {
	t.Helper()
	s, err := tier.New(ctx, local, shared, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rig is a tier over two fresh disk stores, the shared one behind a
// faulty wrapper, with a metrics registry of its own.
type rig struct {
	*tier.Store
	local  *disk.Store
	shared *faulty
	m      *metrics.Metrics
}

func newRig(t *testing.T, opts tier.Options) *rig {
	t.Helper()
	r := &rig{local: openDisk(t, t.TempDir()), m: metrics.New(prometheus.NewRegistry())}
	r.shared = &faulty{Store: openDisk(t, t.TempDir())}
	opts.Metrics = r.m
	r.Store = newTier(t, r.local, r.shared, opts)
	return r
}

// faulty is a shared tier (a disk store) whose calls a test can intercept.
type faulty struct {
	*disk.Store
	put   func(f *os.File, d digest.Digest) error // before the real Put; its error fails it
	del   error                                   // Delete's error
	down  error                                   // when set, Open and Stat fail with it (a store that does not answer)
	gate  chan struct{}                           // when set, reads of opened content wait for it to close
	mu    sync.Mutex
	opens int

	waiting     chan struct{} // when set, closed as the first read waits at the gate
	waitingOnce sync.Once
}

func (s *faulty) Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	if s.put != nil {
		if err := s.put(f, d); err != nil {
			return err
		}
	}
	return s.Store.Put(ctx, f, d, size)
}

func (s *faulty) Delete(ctx context.Context, d digest.Digest) error {
	if s.del != nil {
		return s.del
	}
	return s.Store.Delete(ctx, d)
}

func (s *faulty) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if s.down != nil {
		return 0, s.down
	}
	return s.Store.Stat(ctx, d)
}

func (s *faulty) Open(ctx context.Context, d digest.Digest) (tier.Content, error) {
	s.mu.Lock()
	s.opens++
	s.mu.Unlock()
	if s.down != nil {
		return nil, s.down
	}
	c, err := s.Store.Open(ctx, d)
	if err != nil || s.gate == nil {
		return c, err
	}
	return gated{c, s.gate, s.wait}, nil
}

// wait tells the test, through waiting, that a read waits at the gate.
func (s *faulty) wait() {
	if s.waiting != nil {
		s.waitingOnce.Do(func() { close(s.waiting) })
	}
}

func (s *faulty) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// gated content blocks every read until its gate is closed.
type gated struct {
	tier.Content
	gate    chan struct{}
	waiting func()
}

func (g gated) Read(p []byte) (int, error) {
	g.waiting()
	<-g.gate
	return g.Content.Read(p)
}

func content(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b, digest.FromBytes(b)
}

// putIn stages b in s and puts it as d.
func putIn(t *testing.T, s interface {
	TempFile() (*os.File, error)
	Put(context.Context, *os.File, digest.Digest, int64) error
}, b []byte, d digest.Digest) {
	t.Helper()
	f, err := s.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f, d, int64(len(b))); err != nil {
		t.Fatalf("Put %s: %v", d, err)
	}
}

func has(t *testing.T, s interface {
	Stat(context.Context, digest.Digest) (int64, error)
}, d digest.Digest) bool {
	t.Helper()
	_, err := s.Stat(ctx, d)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func read(t *testing.T, s *tier.Store, d digest.Digest) []byte {
	t.Helper()
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	return b
}

// promotions collects the ends of promotions.
type promotions chan error

func watch(s *tier.Store) promotions {
	p := make(promotions, 16)
	s.OnPromoted(func(_ digest.Digest, err error) { p <- err })
	return p
}
