package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
)

// heldChunks holds every chunk of unknown length at the store's door
// until the test releases it, counting those inside: each holds a buffer.
type heldChunks struct {
	*countingChunks
	entered chan struct{}
	release chan struct{}

	mu         sync.Mutex
	in, peak   int
	bufferSize int
}

func (h *heldChunks) PutBuffered(ctx context.Context, session, chunk string, r io.Reader, buf []byte) (int64, error) {
	h.mu.Lock()
	h.in++
	h.peak = max(h.peak, h.in)
	h.bufferSize = len(buf)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.in--
		h.mu.Unlock()
	}()
	h.entered <- struct{}{}
	<-h.release
	return h.countingChunks.PutBuffered(ctx, session, chunk, r, buf)
}

// TestChunkBuffersCapped: more PATCHes of unknown length at once than
// Limits.ChunkBuffers has buffers for take turns: no more than the cap
// hold a buffer at any time, each waits for one rather than allocate,
// a request whose client leaves while it waits ends, and all the others
// complete with their bytes.
func TestChunkBuffersCapped(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	h := &heldChunks{entered: make(chan struct{}), release: make(chan struct{})}
	c.wrap = func(cc *countingChunks) ChunkStore { h.countingChunks = cc; return h }
	const part = 16 << 20 // the store's default part
	a := c.replica(t, t.TempDir(), Options{Limits: Limits{ChunkBuffers: 2 * part}}, 0)
	waiting := make(chan struct{})
	a.s.bufs.waiting = func(client string) {
		if client == "leaving" {
			close(waiting)
		}
	}
	ctx := context.Background()
	const patches = 6
	bodies := make([][]byte, patches)
	ids := make([]string, patches)
	errs := make([]error, patches)
	var wg sync.WaitGroup
	for i := range patches {
		st, err := a.s.Start(ctx, repo, fmt.Sprintf("client-%d", i)) // each within its share
		if err != nil {
			t.Fatal(err)
		}
		ids[i], bodies[i] = st.ID, randomBytes(100<<10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.s.Write(ctx, repo, ids[i], Chunk{Body: bytes.NewReader(bodies[i]), Length: -1, Start: -1, End: -1})
		}()
	}
	<-h.entered
	<-h.entered // both buffers lent, their bodies held

	// A client that leaves while it waits for a buffer.
	st, err := a.s.Start(ctx, repo, "leaving")
	if err != nil {
		t.Fatal(err)
	}
	gone, leave := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := a.s.Write(gone, repo, st.ID, Chunk{Body: bytes.NewReader([]byte("never")), Length: -1, Start: -1, End: -1})
		waited <- err
	}()
	<-waiting
	leave()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("a PATCH whose client left while it waited: %v, want context.Canceled", err)
	}
	if got, err := a.s.Status(ctx, repo, st.ID); err != nil || got.Size != 0 {
		t.Errorf("the session whose client left: %+v, %v; want it empty", got, err)
	}

	for range patches - 2 { // each one done lets one more in
		h.release <- struct{}{}
		<-h.entered
	}
	h.release <- struct{}{}
	h.release <- struct{}{}
	wg.Wait()
	if h.peak != 2 || h.bufferSize != part {
		t.Errorf("%d chunks held a buffer of %d bytes at once, want 2 of %d (the cap)", h.peak, h.bufferSize, part)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PATCH %d: %v", i, err)
		}
		d := digest.FromBytes(bodies[i])
		if err := a.s.Finish(ctx, repo, ids[i], Chunk{Start: -1, End: -1}, d); err != nil {
			t.Fatalf("finish %d: %v", i, err)
		}
		a.stored(t, d, bodies[i])
	}
}

// patchUnknown sends a PATCH of unknown length into a new session of
// client; its result comes on the channel returned.
func patchUnknown(t *testing.T, r *replica, client string, body []byte) (string, <-chan error) {
	t.Helper()
	st, err := r.s.Start(context.Background(), repo, client)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.s.Write(context.Background(), repo, st.ID, Chunk{Body: bytes.NewReader(body), Length: -1, Start: -1, End: -1})
		done <- err
	}()
	return st.ID, done
}

// busy waits for a PATCH that must be refused for want of a buffer,
// failing the test if it got one instead (the store saw it) or waited on.
func busy(t *testing.T, h *heldChunks, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("a PATCH with no buffer free: %v, want ErrBusy", err)
		}
	case <-h.entered:
		t.Fatal("a PATCH past the cap got a buffer")
	case <-time.After(20 * time.Second):
		t.Fatal("a PATCH waits for a buffer without end")
	}
}

// TestChunkBuffersWaitBounded: while slow bodies hold every buffer, a
// PATCH of another client waits for one only so long, then is refused
// with ErrBusy (a 503 the client retries), acknowledging nothing; once a
// buffer frees, PATCHes go through again.
func TestChunkBuffersWaitBounded(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	h := &heldChunks{entered: make(chan struct{}), release: make(chan struct{})}
	c.wrap = func(cc *countingChunks) ChunkStore { h.countingChunks = cc; return h }
	m := metrics.New(prometheus.NewRegistry())
	a := c.replica(t, t.TempDir(), Options{Limits: Limits{ChunkBuffers: 16 << 20}, Metrics: m}, 0)
	a.s.bufs.wait = 200 * time.Millisecond
	_, slow := patchUnknown(t, a, "slowloris", randomBytes(1000))
	<-h.entered // the one buffer held

	id, done := patchUnknown(t, a, "other", randomBytes(1000))
	busy(t, h, done)
	if got, err := a.s.Status(context.Background(), repo, id); err != nil || got.Size != 0 {
		t.Errorf("the refused PATCH's session: %+v, %v; want it empty", got, err)
	}
	if n := testutil.ToFloat64(m.LimitHits.WithLabelValues("chunk_buffers")); n != 1 {
		t.Errorf("wharf_limit_hits_total{limit=chunk_buffers} = %v, want 1", n)
	}

	h.release <- struct{}{}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	_, done = patchUnknown(t, a, "other", randomBytes(1000))
	<-h.entered
	h.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatalf("a PATCH once a buffer freed: %v", err)
	}
}

// TestChunkBuffersPerClient: one client holds at most half the
// buffers; past its share it is refused while other clients still get
// theirs.
func TestChunkBuffersPerClient(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	h := &heldChunks{entered: make(chan struct{}), release: make(chan struct{})}
	c.wrap = func(cc *countingChunks) ChunkStore { h.countingChunks = cc; return h }
	const part = 16 << 20
	a := c.replica(t, t.TempDir(), Options{Limits: Limits{ChunkBuffers: 8 * part}}, 0) // a share of 4
	a.s.bufs.wait = 200 * time.Millisecond
	var held []<-chan error
	for range 4 {
		_, done := patchUnknown(t, a, "greedy", randomBytes(1000))
		<-h.entered
		held = append(held, done)
	}
	_, done := patchUnknown(t, a, "greedy", randomBytes(1000))
	busy(t, h, done)

	_, other := patchUnknown(t, a, "other", randomBytes(1000))
	select {
	case <-h.entered:
	case err := <-other:
		t.Fatalf("another client's PATCH, buffers free: %v", err)
	}
	held = append(held, other)
	for _, done := range held {
		h.release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestChunkBuffersKnownLengthOverAPart: a chunk whose Content-Length
// passes the part size streams through a lent buffer too (the client
// library would allocate a part of its own for it, outside the cap), and
// a body shorter than announced is refused, acknowledging nothing.
func TestChunkBuffersKnownLengthOverAPart(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	h := &heldChunks{entered: make(chan struct{}), release: make(chan struct{})}
	c.wrap = func(cc *countingChunks) ChunkStore { h.countingChunks = cc; return h }
	const part = 16 << 20
	a := c.replica(t, t.TempDir(), Options{Limits: Limits{ChunkBuffers: part}}, 0)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(part + 1000)
	done := make(chan error, 1)
	go func() {
		_, err := a.s.Write(ctx, repo, st.ID, chunk(body))
		done <- err
	}()
	select {
	case <-h.entered:
	case err := <-done:
		t.Fatalf("a chunk of %d bytes went past the buffers (%v)", len(body), err)
	}
	if h.bufferSize != part {
		t.Errorf("the chunk streamed through %d bytes, want a part of %d", h.bufferSize, part)
	}
	h.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	short := Chunk{Body: bytes.NewReader(randomBytes(part + 10)), Length: part + 20, Start: -1, End: -1}
	go func() {
		_, err := a.s.Write(ctx, repo, st.ID, short)
		done <- err
	}()
	<-h.entered
	h.release <- struct{}{}
	if err := <-done; !errors.Is(err, ErrSizeInvalid) {
		t.Errorf("a body shorter than its Content-Length: %v, want ErrSizeInvalid", err)
	}
	if got, err := a.s.Status(ctx, repo, st.ID); err != nil || got.Size != int64(len(body)) {
		t.Errorf("after the short body: %+v, %v; want the first %d bytes only", got, err, len(body))
	}
	d := digest.FromBytes(body)
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
}

// steppedBody is a request body the test gives bytes to one Read at a
// time, told when the request waits in Read.
type steppedBody struct {
	reading chan struct{}
	data    chan []byte
}

func (b *steppedBody) Read(p []byte) (int, error) {
	b.reading <- struct{}{}
	d, ok := <-b.data
	if !ok {
		return 0, io.EOF
	}
	return copy(p, d), nil
}

// TestChunkBuffersSlowBodyCut: a body that holds a buffer but fills it
// slower than 8 KiB/s over 30 s of waiting for it is cut, acknowledging
// nothing (one byte every 20 s passes any idle timeout); a body as slow
// in time but giving enough bytes goes through.
func TestChunkBuffersSlowBodyCut(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	m := metrics.New(prometheus.NewRegistry())
	a := c.replica(t, t.TempDir(), Options{Metrics: m}, 0)
	a.s.bufs.now = c.clock.Now
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	send := func(body []byte) (*steppedBody, <-chan error) {
		b := &steppedBody{reading: make(chan struct{}), data: make(chan []byte)}
		done := make(chan error, 1)
		go func() {
			_, err := a.s.Write(ctx, repo, st.ID, Chunk{Body: b, Length: -1, Start: -1, End: -1})
			done <- err
		}()
		return b, done
	}
	b, done := send(nil)
	for range 2 {
		<-b.reading // the PATCH waits for its body
		c.clock.add(20 * time.Second)
		b.data <- []byte{1}
	}
	select {
	case <-b.reading:
		t.Fatal("a body of 2 bytes in 40 s was read on")
	case err = <-done:
	}
	if !errors.Is(err, errTooSlow) || !errors.Is(err, ErrSizeInvalid) {
		t.Fatalf("a body of 2 bytes in 40 s: %v, want it cut (errTooSlow, ErrSizeInvalid)", err)
	}
	if got, err := a.s.Status(ctx, repo, st.ID); err != nil || got.Size != 0 {
		t.Fatalf("after the cut: %+v, %v; want nothing acknowledged", got, err)
	}
	if n := testutil.ToFloat64(m.LimitHits.WithLabelValues("chunk_fill_rate")); n != 1 {
		t.Errorf("wharf_limit_hits_total{limit=chunk_fill_rate} = %v, want 1", n)
	}

	body := randomBytes(4 << 20)
	b, done = send(body)
	for i := range 2 {
		<-b.reading
		c.clock.add(20 * time.Second)
		b.data <- body[i*len(body)/2 : (i+1)*len(body)/2]
	}
	<-b.reading
	close(b.data)
	if err := <-done; err != nil {
		t.Fatalf("a body of 4 MiB in 40 s: %v", err)
	}
	d := digest.FromBytes(body)
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
}
