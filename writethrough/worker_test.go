package writethrough

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The write path knows the Worker by its interface; serve hands one to
// the other.
var _ push.WriteThrough = (*Worker)(nil)

// stack is the write path as serve builds it: a cache, write-through over
// its queue, and the Writer that queues, in front of upstreamURL.
type stack struct {
	w       *push.Writer
	wt      *Worker
	c       *cache.Cache
	up      *upstream.Client
	m       *metrics.Metrics
	stopped bool
}

func newStack(t *testing.T, upstreamURL string, opts Options) *stack {
	t.Helper()
	return newStackOn(t, upstreamURL, opts, nil)
}

// newStackOn is newStack with the queue q (nil: the cache's own).
func newStackOn(t *testing.T, upstreamURL string, opts Options, q Queue) *stack {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	up, err := upstream.New(upstream.Options{URL: upstreamURL, Timeout: 10 * time.Second, MaxRetries: -1, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{up}, TagTTL: time.Hour, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	opts.Origins, opts.Metrics = []cache.Origin{up}, m
	if q == nil {
		q = c.Queue()
	}
	wt, err := New(c, q, opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := push.New(c, push.Options{WriteThrough: wt})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{w: w, wt: wt, c: c, up: up, m: m}
	t.Cleanup(s.stop)
	return s
}

// stop closes in serve's order: the write path, write-through, the store.
func (s *stack) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.w.Close()
	s.wt.Close()
	s.c.Close()
	s.up.Close()
}

// An empty index needs no blobs: each push is one manifest PUT upstream.
const emptyIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`

func (s *stack) push(t *testing.T, path string) error {
	t.Helper()
	_, err := s.w.PutManifest(context.Background(), cache.Repo{Upstream: s.up.Name(), Path: path}, "v1",
		"application/vnd.oci.image.index.v1+json", strings.NewReader(emptyIndex), nil)
	return err
}

// holdSlow makes the upstream hold every manifest PUT to repository
// "slow" until release is called (or the request is abandoned); entered
// is closed when the first arrives, fast when a PUT to "fast" does.
func holdSlow(t *testing.T, f *upstreamtest.Faulty) (entered, fast chan struct{}, release func()) {
	entered, fast, held := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var enterOnce, fastOnce, releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(held) }) }
	t.Cleanup(release)
	f.SetFault(func(r *http.Request) upstreamtest.Fault {
		if r.Method != http.MethodPut {
			return upstreamtest.Fault{}
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v2/slow/manifests/"):
			enterOnce.Do(func() { close(entered) })
			select {
			case <-held:
			case <-r.Context().Done():
			}
		case strings.HasPrefix(r.URL.Path, "/v2/fast/manifests/"):
			fastOnce.Do(func() { close(fast) })
		}
		return upstreamtest.Fault{}
	})
	return entered, fast, release
}

func await(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestSlowRepositoryHoldsNoOther: while the upstream holds a push to one
// repository, a push to another goes through, from the Worker and from a
// request in synchronous mode alike. Once released, the held one lands.
func TestSlowRepositoryHoldsNoOther(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "worker", true: "sync"}[sync], func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t)
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			entered, fast, release := holdSlow(t, faulty)
			s := newStack(t, faulty.URL, Options{Sync: sync, Backoff: time.Hour})

			slowDone := make(chan error, 1)
			go func() { slowDone <- s.push(t, "slow") }()
			await(t, "the upstream to hold the push to slow", entered)
			fastDone := make(chan error, 1)
			go func() { fastDone <- s.push(t, "fast") }()
			await(t, "the push to fast to reach the upstream while slow's is held", fast)
			if err := <-fastDone; err != nil {
				t.Fatalf("push to fast: %v", err)
			}
			if sync {
				select {
				case err := <-slowDone:
					t.Fatalf("push to slow returned while the upstream held it: %v", err)
				default:
				}
			}
			release()
			if err := <-slowDone; err != nil {
				t.Fatalf("push to slow: %v", err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for testutil.ToFloat64(s.m.WriteThroughPending) != 0 { // the Worker's line ends on its own
				if time.Now().After(deadline) {
					t.Fatal("queue not empty after release")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, repo := range []string{"slow", "fast"} {
				if _, err := s.up.HeadManifest(context.Background(), repo, "v1", oci.ServedManifests); err != nil {
					t.Errorf("%s:v1 upstream: %v", repo, err)
				}
			}
			if n := testutil.ToFloat64(s.m.WriteThroughPushed); n != 2 {
				t.Errorf("pushed = %v, want 2", n)
			}
		})
	}
}

// TestCloseAbandonsPushInFlight: Close does not wait for the upstream;
// it cancels the push in flight, waits for the Worker's goroutines, and
// leaves the job queued for the next start.
func TestCloseAbandonsPushInFlight(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	entered, _, _ := holdSlow(t, faulty)
	s := newStack(t, faulty.URL, Options{Backoff: time.Hour})
	if err := s.push(t, "slow"); err != nil {
		t.Fatal(err)
	}
	await(t, "the upstream to hold the push", entered)
	closed := make(chan struct{})
	go func() { s.wt.Close(); close(closed) }()
	await(t, "Close to return while the upstream holds the push", closed)
	var jobs []index.Job
	s.c.Queue().Jobs(func(_ string, j index.Job) error { jobs = append(jobs, j); return nil })
	if len(jobs) != 1 || !strings.HasSuffix(jobs[0].Repo, "/slow") || jobs[0].Attempts != 0 {
		t.Errorf("queue after Close = %+v, want slow's job, unattempted", jobs)
	}
}

func TestBackoffDoublesUpToMax(t *testing.T) {
	wt := &Worker{opts: Options{Backoff: time.Second, MaxBackoff: 5 * time.Second}}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 30: 5 * time.Second} {
		if got := wt.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}

// mountRecorder is an upstream that holds nothing and records the mount
// source each blob push offers.
type mountRecorder struct{ from []string }

func (*mountRecorder) HeadBlob(context.Context, string, digest.Digest) (int64, error) {
	return 0, upstream.ErrNotFound
}

func (m *mountRecorder) PushBlob(_ context.Context, _ string, _ digest.Digest, _ int64, _ func() (io.ReadCloser, error), from string) error {
	m.from = append(m.from, from)
	return nil
}

func (*mountRecorder) PutManifest(context.Context, string, string, string, []byte) error { return nil }

// TestMountSourceStaysOnItsUpstream: a repository a blob was pushed to is
// offered as its mount source on that upstream only; on another upstream
// the same path is another repository, or none.
func TestMountSourceStaysOnItsUpstream(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	s := newStack(t, reg.URL, Options{})
	body := []byte("a layer pushed to two upstreams")
	d := digest.FromBytes(body)
	f, err := s.c.TempFile() // stored as wharf import stores it
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Ingest(context.Background(), f, d, int64(len(body)), true); err != nil {
		t.Fatal(err)
	}
	rec := &mountRecorder{}
	for _, p := range []struct{ up, path string }{{"a.example", "team/x"}, {"b.example", "team/y"}, {"a.example", "team/z"}} {
		if err := s.wt.pushBlob(context.Background(), rec, p.up, p.path, d); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"", "", "team/x"}; !slices.Equal(rec.from, want) {
		t.Fatalf("mount sources offered %q, want %q", rec.from, want)
	}
}
