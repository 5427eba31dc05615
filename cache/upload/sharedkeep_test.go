package upload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
)

// Long requests are driven by the test: a body fed through a pipe, the
// shared clock moved by hand, and the keep-alive's ticks sent by the test.

// manualTicker drives one Sessions' keep-alives by hand.
type manualTicker struct {
	c       chan time.Time
	outcome chan bool
}

// manualTicks makes s's keep-alive tick when the test says.
func manualTicks(s *Sessions) *manualTicker {
	tk := &manualTicker{c: make(chan time.Time), outcome: make(chan bool)}
	s.tick = func(time.Duration) (<-chan time.Time, func()) { return tk.c, func() {} }
	s.touched = func(ok bool) { tk.outcome <- ok }
	return tk
}

// tick makes the keep-alive write once and reports whether it went on
// (false: the session was replaced or ended under it).
func tick(t *testing.T, tk *manualTicker) bool {
	t.Helper()
	timeout := time.After(30 * time.Second)
	select {
	case tk.c <- time.Time{}:
	case <-timeout:
		t.Fatal("the keep-alive stopped taking ticks")
	}
	select {
	case ok := <-tk.outcome:
		return ok
	case <-timeout:
		t.Fatal("the keep-alive's write did not end")
		return false
	}
}

// keptAlive ticks once and fails the test unless the write went on.
func keptAlive(t *testing.T, tk *manualTicker) {
	t.Helper()
	if !tick(t, tk) {
		t.Fatal("a keep-alive lost its write while nothing else wrote the session")
	}
}

// streaming is a PATCH whose body the test feeds.
type streaming struct {
	pw   *io.PipeWriter
	done chan patchResult
}

type patchResult struct {
	st  Status
	err error
}

func patchSlowly(s *Sessions, id string) *streaming {
	pr, pw := io.Pipe()
	p := &streaming{pw: pw, done: make(chan patchResult, 1)}
	go func() {
		st, err := s.Write(context.Background(), repo, id, Chunk{Body: pr, Length: -1, Start: -1, End: -1})
		pr.CloseWithError(err)
		p.done <- patchResult{st, err}
	}()
	return p
}

// feed gives the PATCH b; it returns once the PATCH has read it all.
func (p *streaming) feed(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.pw.Write(b); err != nil {
		t.Fatalf("feed the PATCH: %v", err)
	}
}

func (p *streaming) end(t *testing.T, err error) patchResult {
	t.Helper()
	p.pw.CloseWithError(err)
	select {
	case r := <-p.done:
		return r
	case <-time.After(time.Minute):
		t.Fatal("the PATCH did not end with its body")
		return patchResult{}
	}
}

// sweepNow runs s's sweep, failing the test if it waits on a request in
// progress instead of passing it by.
func sweepNow(t *testing.T, s *Sessions) int {
	t.Helper()
	n := make(chan int, 1)
	go func() { n <- s.sweep() }()
	select {
	case got := <-n:
		return got
	case <-time.After(30 * time.Second):
		t.Fatal("the sweep waited for a request in progress")
		return 0
	}
}

// twoReplicasOneSession opens replicas a and b with a 1 h expiry, a's
// keep-alive ticked by the test, and a session opened on a.
func twoReplicasOneSession(t *testing.T) (*cluster, *replica, *replica, *manualTicker, Status) {
	c := newCluster(t, minio.Get(t))
	opts := Options{Expiry: time.Hour}
	a := c.replica(t, t.TempDir(), opts, 0)
	b := c.replica(t, t.TempDir(), opts, 0)
	st, err := a.s.Start(context.Background(), repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	return c, a, b, manualTicks(a.s), st
}

// TestSharedUploadLongPatchOutlivesExpiry: a PATCH that streams on one
// replica for several expiries is not swept by another replica's sweep,
// nor by its own, and the upload finishes with the right bytes.
func TestSharedUploadLongPatchOutlivesExpiry(t *testing.T) {
	c, a, b, ticks, st := twoReplicasOneSession(t)
	ctx := context.Background()
	body := randomBytes(3 << 20)
	if _, err := a.s.Write(ctx, repo, st.ID, at(body[:1<<20], 0)); err != nil {
		t.Fatal(err)
	}
	p := patchSlowly(a.s, st.ID)
	rest := body[1<<20:]
	const pieces = 8 // 8 × 25 min: over three expiries
	for i := range pieces {
		p.feed(t, rest[i*len(rest)/pieces:(i+1)*len(rest)/pieces])
		c.clock.add(25 * time.Minute)
		keptAlive(t, ticks)
		if n := sweepNow(t, b.s); n != 0 {
			t.Fatalf("after %d min of streaming, the other replica swept %d sessions", (i+1)*25, n)
		}
		if n := sweepNow(t, a.s); n != 0 {
			t.Fatalf("after %d min of streaming, the replica taking the PATCH swept %d sessions", (i+1)*25, n)
		}
	}
	if r := p.end(t, nil); r.err != nil || r.st.Size != int64(len(body)) {
		t.Fatalf("the long PATCH: %+v, %v; want all %d bytes acknowledged", r.st, r.err, len(body))
	}
	d := digest.FromBytes(body)
	if err := b.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	b.stored(t, d, body)
}

// TestSharedUploadKeepAliveRacesTheSweep: the tombstone rule still
// decides. A sweep that read the state before a keep-alive loses; one
// whose tombstone lands first ends the session, and the PATCH that kept
// it alive is then not acknowledged and leaves nothing in the bucket.
func TestSharedUploadKeepAliveRacesTheSweep(t *testing.T) {
	c, a, b, ticks, st := twoReplicasOneSession(t)
	ctx := context.Background()
	p := patchSlowly(a.s, st.ID)
	p.feed(t, randomBytes(64<<10))

	// The sweep reads the state, then a keep-alive lands: the tombstone
	// is refused.
	old, ver, err := b.s.readState(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.clock.add(2 * time.Hour)
	keptAlive(t, ticks)
	if b.s.endIdle(ctx, st.ID, old, ver) {
		t.Fatal("a sweep ended a session on a state older than its keep-alive")
	}

	// No keep-alive for two expiries (a replica stalled): the sweep wins,
	// and the keep-alive and the PATCH lose.
	c.clock.add(2 * time.Hour)
	if n := sweepNow(t, b.s); n != 1 {
		t.Fatalf("swept %d sessions, want the stalled one", n)
	}
	if tick(t, ticks) {
		t.Fatal("a keep-alive went on over the sweep's tombstone")
	}
	p.feed(t, randomBytes(64<<10))
	if r := p.end(t, nil); !errors.Is(r.err, ErrUnknown) {
		t.Fatalf("the PATCH of a swept session: %+v, %v; want ErrUnknown", r.st, r.err)
	}
	if keys := c.keys(t); len(keys) != 0 {
		t.Errorf("the bucket holds %v after the sweep and the PATCH, want nothing", keys)
	}
}

// TestLongPatchOutlivesExpiry: on one node, a PATCH streaming past the
// expiry is not swept, nor does the sweep wait for it; a PATCH whose body
// breaks after streaming that long leaves its session a whole expiry to
// resume in.
func TestLongPatchOutlivesExpiry(t *testing.T) {
	clock := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := open(t, t.TempDir(), Options{Expiry: time.Hour, Now: clock.Now})
	ctx := context.Background()
	st, err := f.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Write(ctx, repo, st.ID, chunk(randomBytes(1024))); err != nil {
		t.Fatal(err)
	}
	p := patchSlowly(f.s, st.ID)
	for range 3 {
		p.feed(t, randomBytes(4096))
		clock.add(time.Hour)
		if n := sweepNow(t, f.s); n != 0 {
			t.Fatalf("swept %d sessions while a PATCH streams into one", n)
		}
	}
	if r := p.end(t, errors.New("client gone")); r.err == nil {
		t.Fatal("a PATCH whose body broke was acknowledged")
	}
	clock.add(time.Hour - time.Minute)
	if n := sweepNow(t, f.s); n != 0 {
		t.Fatalf("swept %d sessions within an expiry of their last request", n)
	}
	if got, err := f.s.Status(ctx, repo, st.ID); err != nil || got.Size != 1024 {
		t.Fatalf("after the broken PATCH: %+v, %v; want the 1024 bytes acknowledged", got, err)
	}
	clock.add(2 * time.Minute)
	if n := sweepNow(t, f.s); n != 1 {
		t.Fatalf("swept %d sessions an expiry after their last request, want 1", n)
	}
}

// heldIngest holds each blob at the store's door until the test lets it
// in: a finish that takes its time.
type heldIngest struct {
	Ingester
	entered, release chan struct{}
}

func (h heldIngest) Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error {
	h.entered <- struct{}{}
	<-h.release
	return h.Ingester.Ingest(ctx, f, d, size, pinned)
}

// TestSharedUploadLongFinishOutlivesExpiry: a PUT that takes longer than
// the expiry to stage and store its blob keeps its session too, whether
// it carries the whole blob or finishes chunks.
func TestSharedUploadLongFinishOutlivesExpiry(t *testing.T) {
	c, a, b, ticks, st := twoReplicasOneSession(t)
	h := heldIngest{Ingester: a.s.opts.Ingest, entered: make(chan struct{}), release: make(chan struct{})}
	a.s.opts.Ingest = h
	ctx := context.Background()
	chunked := randomBytes(64 << 10)
	if _, err := a.s.Write(ctx, repo, st.ID, at(chunked, 0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string // "": a new session, finished by a monolithic PUT
		body []byte
		last Chunk
	}{{st.ID, chunked, Chunk{Start: -1, End: -1}}, {"", randomBytes(64 << 10), Chunk{}}} {
		if tc.id == "" {
			mono, err := a.s.Start(ctx, repo, "client")
			if err != nil {
				t.Fatal(err)
			}
			tc.id, tc.last = mono.ID, chunk(tc.body)
		}
		d := digest.FromBytes(tc.body)
		done := make(chan error, 1)
		go func() { done <- a.s.Finish(ctx, repo, tc.id, tc.last, d) }()
		<-h.entered
		for range 3 {
			c.clock.add(time.Hour)
			keptAlive(t, ticks)
			if n := sweepNow(t, b.s); n != 0 {
				t.Fatalf("the other replica swept %d sessions while one finished", n)
			}
		}
		h.release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatalf("the long finish: %v", err)
		}
		a.stored(t, d, tc.body)
	}
}

// TestSharedUploadLateRequestTouchesAtOnce: a PATCH, or a PUT without a
// body, that starts just before its session's expiry vouches for it at
// once, not a keep-alive period later: another replica's sweep two
// minutes on passes it by.
func TestSharedUploadLateRequestTouchesAtOnce(t *testing.T) {
	c, a, b, _, st := twoReplicasOneSession(t) // no tick is ever sent
	h := heldIngest{Ingester: a.s.opts.Ingest, entered: make(chan struct{}), release: make(chan struct{})}
	a.s.opts.Ingest = h
	ctx := context.Background()
	body := randomBytes(128 << 10)
	if _, err := a.s.Write(ctx, repo, st.ID, at(body[:64<<10], 0)); err != nil {
		t.Fatal(err)
	}
	c.clock.add(59 * time.Minute)
	p := patchSlowly(a.s, st.ID)
	p.feed(t, body[64<<10:]) // read: the PATCH is under way
	c.clock.add(2 * time.Minute)
	if n := sweepNow(t, b.s); n != 0 {
		t.Fatalf("a PATCH started a minute before the expiry: the other replica swept %d sessions 2 min on", n)
	}
	if r := p.end(t, nil); r.err != nil || r.st.Size != int64(len(body)) {
		t.Fatalf("the late PATCH: %+v, %v; want all %d bytes", r.st, r.err, len(body))
	}

	c.clock.add(59 * time.Minute)
	d := digest.FromBytes(body)
	done := make(chan error, 1)
	go func() { done <- a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d) }()
	<-h.entered
	c.clock.add(2 * time.Minute)
	if n := sweepNow(t, b.s); n != 0 {
		t.Fatalf("a PUT started a minute before the expiry: the other replica swept %d sessions 2 min on", n)
	}
	h.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
}

// TestSharedUploadLateRequestOnAReplacedSession: when the touch a late
// request makes first finds the session written by another replica, the
// request fails before reading a byte of its body.
func TestSharedUploadLateRequestOnAReplacedSession(t *testing.T) {
	c, a, b, _, st := twoReplicasOneSession(t)
	ctx := context.Background()
	stale, ver, err := a.s.load(ctx, repo, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.Write(ctx, repo, st.ID, at(randomBytes(1000), 0)); err != nil {
		t.Fatal(err)
	}
	c.clock.add(59 * time.Minute)
	r := &countingReader{r: bytes.NewReader(randomBytes(1000))}
	_, _, err = a.s.appendShared(ctx, st.ID, stale, ver, Chunk{Body: r, Length: -1, Start: -1, End: -1})
	var re *RangeError
	if !errors.As(err, &re) || re.Size != 1000 || r.n != 0 {
		t.Fatalf("a late PATCH on a state another replica replaced: %v after reading %d bytes; want a RangeError at 1000, nothing read", err, r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// lostAnswers is a records store whose chosen writes are applied but
// answered ErrConflict: a write whose answer was lost, retried by the
// client library, meeting the write itself.
type lostAnswers struct {
	records.Store
	mu   sync.Mutex
	lose func(sharedState) bool // which writes; nil: none
	lost int
}

func (l *lostAnswers) Put(ctx context.Context, key string, data []byte, cond records.Cond) (string, error) {
	ver, err := l.Store.Put(ctx, key, data, cond)
	if err != nil {
		return ver, err
	}
	var st sharedState
	if err := json.Unmarshal(data, &st); err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lose != nil && l.lose(st) {
		l.lose = nil
		l.lost++
		return "", fmt.Errorf("retry of a write applied: %w", records.ErrConflict)
	}
	return ver, nil
}

func (l *lostAnswers) arm(lose func(sharedState) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lose = lose
}

func (l *lostAnswers) lostCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// lossyReplica opens a replica whose records store loses answers.
func lossyReplica(t *testing.T) (*cluster, *replica, *lostAnswers) {
	c := newCluster(t, minio.Get(t))
	l := &lostAnswers{}
	c.wrapRecords = func(r records.Store) records.Store { l.Store = r; return l }
	return c, c.replica(t, t.TempDir(), Options{Expiry: time.Hour}, 0), l
}

// TestSharedUploadKeepAliveAnswerLost: a keep-alive whose write the
// store applied but answered with a conflict (its retry met itself) goes
// on from the state it wrote, and the PATCH it kept alive is
// acknowledged.
func TestSharedUploadKeepAliveAnswerLost(t *testing.T) {
	_, a, l := lossyReplica(t)
	ticks := manualTicks(a.s)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(128 << 10)
	p := patchSlowly(a.s, st.ID)
	p.feed(t, body[:64<<10])
	l.arm(func(st sharedState) bool { return !st.Touched.IsZero() })
	keptAlive(t, ticks) // its answer lost, the touch goes on
	keptAlive(t, ticks) // from the version it wrote
	p.feed(t, body[64<<10:])
	if r := p.end(t, nil); r.err != nil || r.st.Size != int64(len(body)) {
		t.Fatalf("a PATCH whose keep-alive's answer was lost: %+v, %v; want all %d bytes", r.st, r.err, len(body))
	}
	if l.lostCount() != 1 {
		t.Fatalf("%d answers lost, want the keep-alive's", l.lostCount())
	}
	d := digest.FromBytes(body)
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
}

// TestSharedUploadChunkAnswerLost: a PATCH whose state write the store
// applied but answered with a conflict is acknowledged, and its chunk,
// which the state names, stays: the upload finishes with its bytes.
func TestSharedUploadChunkAnswerLost(t *testing.T) {
	_, a, l := lossyReplica(t)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(64 << 10)
	l.arm(func(st sharedState) bool { return len(st.Chunks) == 1 })
	got, err := a.s.Write(ctx, repo, st.ID, at(body, 0))
	if err != nil || got.Size != int64(len(body)) || l.lostCount() != 1 {
		t.Fatalf("a PATCH whose state write's answer was lost: %+v, %v (%d lost); want %d bytes acknowledged", got, err, l.lostCount(), len(body))
	}
	d := digest.FromBytes(body)
	a.s.dropCopy(st.ID, a.s.copyOf(st.ID)) // read the chunk back from the bucket
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatalf("finish after the lost answer: %v", err)
	}
	a.stored(t, d, body)
}

// TestSharedUploadKeepAliveStopsWithItsRequest: the keep-alive's
// goroutine (and its ticker) ends with the request, whether the body
// ends or the client goes away mid-body.
func TestSharedUploadKeepAliveStopsWithItsRequest(t *testing.T) {
	_, a, _, _, st := twoReplicasOneSession(t)
	var mu sync.Mutex
	live := 0
	ticks := make(chan time.Time)
	a.s.tick = func(time.Duration) (<-chan time.Time, func()) {
		mu.Lock()
		defer mu.Unlock()
		live++
		return ticks, func() { mu.Lock(); defer mu.Unlock(); live-- }
	}
	running := func() int { mu.Lock(); defer mu.Unlock(); return live }

	p := patchSlowly(a.s, st.ID)
	p.feed(t, randomBytes(1000))
	if n := running(); n != 1 {
		t.Fatalf("%d keep-alives while a PATCH streams, want 1", n)
	}
	if r := p.end(t, nil); r.err != nil {
		t.Fatal(r.err)
	}
	if n := running(); n != 0 {
		t.Errorf("%d keep-alives after the PATCH ended, want none", n)
	}

	ctx, leave := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := a.s.Write(ctx, repo, st.ID, Chunk{Body: pr, Length: -1, Start: -1, End: -1})
		done <- err
	}()
	if _, err := pw.Write(randomBytes(1000)); err != nil {
		t.Fatal(err)
	}
	leave()
	pw.CloseWithError(context.Canceled) // the server closes a gone client's body
	if err := <-done; err == nil {
		t.Fatal("a PATCH whose client left was acknowledged")
	}
	if n := running(); n != 0 {
		t.Errorf("%d keep-alives after the client left, want none", n)
	}
}
