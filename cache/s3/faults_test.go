package s3_test

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// bounded runs op and fails t if it does not return within limit. A hang
// is what it guards against, so op runs aside and a late one is reported,
// not waited for to the test's own timeout.
func bounded(t *testing.T, name string, limit time.Duration, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- op() }()
	select {
	case err := <-done:
		t.Logf("%s: failed after %s: %v", name, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(limit):
		t.Fatalf("%s still running after %s", name, limit)
		return nil
	}
}

// failsCleanly checks that op fails within limit with an error that is
// not fs.ErrNotExist: a store that cannot be reached says so, rather than
// that the content is missing.
func failsCleanly(t *testing.T, name string, limit time.Duration, op func() error) {
	t.Helper()
	err := bounded(t, name, limit, op)
	switch {
	case err == nil:
		t.Errorf("%s succeeded with the store gone", name)
	case errors.Is(err, fs.ErrNotExist):
		t.Errorf("%s: %v; an unreachable store is not missing content", name, err)
	}
}

// faultStore opens a store with a short timeout on a server of its own,
// puts one blob and opens a reader on it that has read its first bytes,
// so a GET is under way when the fault strikes.
func faultStore(t *testing.T, size int) (srv *s3test.Server, s *s3.Store, d digest.Digest, c io.ReadCloser) {
	srv = s3test.Own(t)
	o := options(srv, srv.Bucket(t))
	o.Timeout = time.Second
	o.PartSize = 5 << 20
	s = open(t, o)
	_, d = putRandom(t, s, size)
	rc, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	return srv, s, d, rc
}

// everyOpFails runs each of the store's operations against a store that
// is down, each to fail cleanly within limit.
func everyOpFails(t *testing.T, s *s3.Store, d digest.Digest, limit time.Duration) {
	t.Helper()
	failsCleanly(t, "Stat", limit, func() error { _, err := s.Stat(ctx, d); return err })
	failsCleanly(t, "Open", limit, func() error {
		c, err := s.Open(ctx, d)
		if err == nil {
			c.Close()
		}
		return err
	})
	failsCleanly(t, "Delete", limit, func() error { return s.Delete(ctx, d) })
	failsCleanly(t, "Walk", limit, func() error {
		return s.Walk(ctx, func(digest.Digest, int64) error { return nil })
	})
	f, nd := stageRandom(t, 12<<20) // multipart: a part is 5 MiB
	failsCleanly(t, "Put", limit, func() error { return s.Put(ctx, f, nd, 12<<20) })
}

// TestStoppedStoreFailsFast: the server killed, every operation fails
// within seconds (a refused connection, retried a few times), and a read
// under way fails instead of ending short as if complete.
func TestStoppedStoreFailsFast(t *testing.T) {
	srv, s, d, c := faultStore(t, 32<<20)
	srv.Stop()
	failsCleanly(t, "Read", 10*time.Second, func() error { _, err := io.Copy(io.Discard, c); return err })
	everyOpFails(t, s, d, 10*time.Second)
}

// TestFrozenStoreFailsWithinTimeout: a server that stops answering but
// keeps its sockets open (the kernel accepts and buffers on its behalf)
// is the case net/http does not bound by itself. A read under way stalls
// once the socket buffers are drained and is cut after Timeout; every
// other operation fails within its retries of Timeout.
func TestFrozenStoreFailsWithinTimeout(t *testing.T) {
	srv, s, d, c := faultStore(t, 32<<20)
	srv.Freeze(t)
	defer srv.Thaw()
	err := bounded(t, "Read", 10*time.Second, func() error { _, err := io.Copy(io.Discard, c); return err })
	if err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Errorf("Read from a frozen store: %v; want it cut for making no progress", err)
	}
	everyOpFails(t, s, d, 20*time.Second)
}

// TestFrozenMidUploadFailsPut: a store that freezes while a part is being
// sent stops taking the body once the socket buffers are full; the
// transport would wait on that write for ever, and the watchdog cuts it.
func TestFrozenMidUploadFailsPut(t *testing.T) {
	srv := s3test.Own(t)
	defer srv.Thaw()
	var froze sync.Once
	rec := &recorder{onPart: func(sent int64) {
		if sent > 1<<20 {
			froze.Do(func() { srv.Freeze(t) })
		}
	}}
	o := options(srv, srv.Bucket(t))
	o.Timeout = time.Second
	o.PartSize = 32 << 20 // more than the socket buffers hold
	o.WrapTransport = func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }
	s := open(t, o)
	const size = 64 << 20
	f, d := stageRandom(t, size)
	err := bounded(t, "Put", 20*time.Second, func() error { return s.Put(ctx, f, d, size) })
	if err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Errorf("Put to a store frozen mid-upload: %v; want it cut for making no progress", err)
	}
}
