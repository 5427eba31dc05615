// Package storetest is the conformance table every cache.Store must pass:
// the disk store (cache/disk) and the S3 store (cache/s3). An
// implementation's test calls Run with a function that makes a fresh, empty storage:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener {
//			dir := t.TempDir()
//			return func(t *testing.T) cache.Store { return mustOpen(t, dir) }
//		})
//	}
//
// Crashes are played out by opening the same storage again, as a
// restarted process would, after stopping at each step of a put: a
// staged file never put, a put refused. None may leave anything visible,
// and what a store staged locally must be swept when it opens.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// Opener opens the store under test. Every call opens the same storage
// again, as a process restarted after a crash would: what was put is
// still there, what was only staged is gone.
type Opener func(t *testing.T) cache.Store

// Run runs every case against stores from newStore, which must return an
// Opener of a fresh, empty storage each time it is called.
func Run(t *testing.T, newStore func(t *testing.T) Opener) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"PutThenRead", putThenRead},
	{"EmptyContent", emptyContent},
	{"MissingIsNotExist", missingIsNotExist},
	{"StagedIsInvisible", stagedIsInvisible},
	{"PutOfAShortFileKeepsNothing", putOfAShortFileKeepsNothing},
	{"PutOfALongFileKeepsNothing", putOfALongFileKeepsNothing},
	{"StagedFileReadableAfterPut", stagedFileReadableAfterPut},
	{"PutTwice", putTwice},
	{"ConcurrentPutsOfOneDigest", concurrentPutsOfOneDigest},
	{"Seek", seek},
	{"Delete", deleteContent},
	{"WalkListsExactlyWhatWasPut", walkListsExactlyWhatWasPut},
	{"WalkStopsAtFirstError", walkStopsAtFirstError},
	{"WalkStopsWhenCancelled", walkStopsWhenCancelled},
	{"PutSurvivesReopen", putSurvivesReopen},
	{"CrashAfterStagingKeepsNothing", crashAfterStagingKeepsNothing},
	{"CrashAfterRefusedPutKeepsNothing", crashAfterRefusedPutKeepsNothing},
}

var ctx = context.Background()

func randomContent(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

// stage writes b to a new staged file; the caller closes it.
func stage(t *testing.T, s cache.Store, b []byte) *os.File {
	t.Helper()
	f, err := s.TempFile()
	if err != nil {
		t.Fatalf("TempFile: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatalf("write staged file: %v", err)
	}
	return f
}

// put stages b and puts it as d.
func put(t *testing.T, s cache.Store, b []byte, d digest.Digest) {
	t.Helper()
	f := stage(t, s, b)
	if err := s.Put(ctx, f, d, int64(len(b))); err != nil {
		t.Fatalf("Put %s: %v", d, err)
	}
	f.Close()
}

// mustHold checks that d reads back as want through Open, Stat and Walk.
func mustHold(t *testing.T, s cache.Store, d digest.Digest, want []byte) {
	t.Helper()
	size, err := s.Stat(ctx, d)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Stat %s: %d, %v; want %d bytes", d, size, err, len(want))
	}
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open %s: %v", d, err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes, %v; want the %d bytes put", d, len(got), err, len(want))
	}
	if walked := walk(t, s); walked[d] != int64(len(want)) {
		t.Fatalf("Walk gave %s as %d bytes (%t), want %d", d, walked[d], hasKey(walked, d), len(want))
	}
}

// mustNotHold checks that d is visible nowhere.
func mustNotHold(t *testing.T, s cache.Store, d digest.Digest) {
	t.Helper()
	if size, err := s.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat %s: %d bytes, %v; want fs.ErrNotExist", d, size, err)
	}
	if c, err := s.Open(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("Open %s: %v; want fs.ErrNotExist", d, err)
	}
	if walked := walk(t, s); hasKey(walked, d) {
		t.Fatalf("Walk lists %s", d)
	}
}

func walk(t *testing.T, s cache.Store) map[digest.Digest]int64 {
	t.Helper()
	out := map[digest.Digest]int64{}
	err := s.Walk(ctx, func(d digest.Digest, size int64) error {
		if _, dup := out[d]; dup {
			return fmt.Errorf("%s listed twice", d)
		}
		out[d] = size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

func hasKey(m map[digest.Digest]int64, d digest.Digest) bool {
	_, ok := m[d]
	return ok
}

func putThenRead(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 300<<10)
	before := time.Now().Add(-time.Minute) // coarse clocks, and a store's own clock
	put(t, s, b, d)
	mustHold(t, s, d, b)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fi, err := c.Stat()
	if err != nil {
		t.Fatalf("Stat of open content: %v", err)
	}
	if fi.Size() != int64(len(b)) {
		t.Errorf("open content says %d bytes, want %d", fi.Size(), len(b))
	}
	if fi.ModTime().Before(before) || fi.ModTime().After(time.Now().Add(time.Minute)) {
		t.Errorf("open content's mod time %v is not the time of the put", fi.ModTime())
	}
}

// emptyContent: the empty blob (sha256:e3b0…) is real content, pushed and
// pulled like any other.
func emptyContent(t *testing.T, open Opener) {
	s := open(t)
	put(t, s, nil, digest.FromBytes(nil))
	mustHold(t, s, digest.FromBytes(nil), []byte{})
}

func missingIsNotExist(t *testing.T, open Opener) {
	s := open(t)
	_, d := randomContent(t, 10)
	mustNotHold(t, s, d)
	if err := s.Delete(ctx, d); err != nil {
		t.Errorf("Delete of what is not stored: %v, want nil", err)
	}
}

func stagedIsInvisible(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 4096)
	stage(t, s, b)
	mustNotHold(t, s, d)
	if n := len(walk(t, s)); n != 0 {
		t.Errorf("Walk lists %d items with only a staged file, want 0", n)
	}
}

// putOfAShortFileKeepsNothing: a staged file cut short (a write that
// failed or a crash mid-copy) is refused however its writer named it.
func putOfAShortFileKeepsNothing(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 64<<10)
	f := stage(t, s, b[:len(b)/2])
	if err := s.Put(ctx, f, d, int64(len(b))); err == nil {
		t.Fatal("Put of half the bytes succeeded")
	}
	mustNotHold(t, s, d)
}

func putOfALongFileKeepsNothing(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 64<<10)
	f := stage(t, s, append(b, 'x'))
	if err := s.Put(ctx, f, d, int64(len(b))); err == nil {
		t.Fatal("Put of a byte too many succeeded")
	}
	mustNotHold(t, s, d)
}

// stagedFileReadableAfterPut: followers of a fill read the staged file by
// descriptor while and after it is put.
func stagedFileReadableAfterPut(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 100<<10)
	f := stage(t, s, b)
	if err := s.Put(ctx, f, d, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(b))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, b) {
		t.Errorf("staged file after Put: %v; want its bytes still readable", err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("staged path after Put: %v; want it gone (moved or copied away)", err)
	}
}

func putTwice(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 10<<10)
	put(t, s, b, d)
	put(t, s, b, d)
	mustHold(t, s, d, b)
}

// concurrentPutsOfOneDigest: two fills of one digest cannot run at once,
// but a push and a fill, or two imports, can.
func concurrentPutsOfOneDigest(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 256<<10)
	const n = 8
	files := make([]*os.File, n)
	for i := range files {
		files[i] = stage(t, s, b)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(ctx, f, d, int64(len(b)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d of %d: %v", i+1, n, err)
		}
	}
	mustHold(t, s, d, b)
}

// seek: http.ServeContent answers a Range request by seeking.
func seek(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 200<<10)
	put(t, s, b, d)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if end, err := c.Seek(0, io.SeekEnd); err != nil || end != int64(len(b)) {
		t.Fatalf("Seek to end: %d, %v; want %d", end, err, len(b))
	}
	const at = 123_457
	if pos, err := c.Seek(at, io.SeekStart); err != nil || pos != at {
		t.Fatalf("Seek to %d: %d, %v", at, pos, err)
	}
	got, err := io.ReadAll(io.LimitReader(c, 1000))
	if err != nil || !bytes.Equal(got, b[at:at+1000]) {
		t.Errorf("read after Seek: %d bytes, %v; want bytes %d-%d", len(got), err, at, at+999)
	}
}

func deleteContent(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 10<<10)
	other, od := randomContent(t, 10<<10)
	put(t, s, b, d)
	put(t, s, other, od)
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	mustNotHold(t, s, d)
	mustHold(t, s, od, other)
	if err := s.Delete(ctx, d); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	s = open(t)
	mustNotHold(t, s, d)
	mustHold(t, s, od, other)
}

func walkListsExactlyWhatWasPut(t *testing.T, open Opener) {
	s := open(t)
	want := map[digest.Digest]int64{}
	for i := range 20 {
		b, d := randomContent(t, 1000+i*37)
		put(t, s, b, d)
		want[d] = int64(len(b))
	}
	stage(t, s, []byte("staged, never put"))
	got := walk(t, s)
	if len(got) != len(want) {
		t.Errorf("Walk listed %d items, want %d", len(got), len(want))
	}
	for d, size := range want {
		if got[d] != size {
			t.Errorf("Walk: %s is %d bytes (%t), want %d", d, got[d], hasKey(got, d), size)
		}
	}
}

func walkStopsAtFirstError(t *testing.T, open Opener) {
	s := open(t)
	for range 3 {
		b, d := randomContent(t, 100)
		put(t, s, b, d)
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Walk(ctx, func(digest.Digest, int64) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk returned %v after %d calls; want fn's error after 1", err, calls)
	}
}

// walkStopsWhenCancelled: a walk of a large store (verify, reconcile at
// start) ends with the context's error when its context ends, rather than
// running on, or ending as if it had seen everything.
func walkStopsWhenCancelled(t *testing.T, open Opener) {
	s := open(t)
	for range 3 {
		b, d := randomContent(t, 100)
		put(t, s, b, d)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := s.Walk(wctx, func(digest.Digest, int64) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Walk cancelled during its first item returned %v; want context.Canceled", err)
	}
}

func putSurvivesReopen(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 50<<10)
	put(t, s, b, d)
	mustHold(t, open(t), d, b)
}

// crashAfterStagingKeepsNothing: the process dies with a staged file fully
// written but never put (between the last byte and the put).
func crashAfterStagingKeepsNothing(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 50<<10)
	f := stage(t, s, b)
	f.Sync()
	half, hd := randomContent(t, 50<<10)
	stage(t, s, half[:len(half)/2]) // and one cut off mid-write
	s = open(t)
	mustNotHold(t, s, d)
	mustNotHold(t, s, hd)
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a staged file outlived the reopen: %v; want it swept", err)
	}
	if n := len(walk(t, s)); n != 0 {
		t.Errorf("Walk lists %d items after the crash, want 0", n)
	}
}

// crashAfterRefusedPutKeepsNothing: a put refused (the writer's size was
// wrong) and then the process dies before removing its staged file.
func crashAfterRefusedPutKeepsNothing(t *testing.T, open Opener) {
	s := open(t)
	b, d := randomContent(t, 50<<10)
	f := stage(t, s, b[:1000])
	if err := s.Put(ctx, f, d, int64(len(b))); err == nil {
		t.Fatal("Put of a short file succeeded")
	}
	s = open(t)
	mustNotHold(t, s, d)
	if _, err := os.Stat(f.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused staged file outlived the reopen: %v; want it swept", err)
	}
}
