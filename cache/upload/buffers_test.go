package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
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
	ctx := context.Background()
	const patches = 6
	bodies := make([][]byte, patches)
	ids := make([]string, patches)
	errs := make([]error, patches)
	var wg sync.WaitGroup
	for i := range patches {
		st, err := a.s.Start(ctx, repo, "client")
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
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	gone, leave := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := a.s.Write(gone, repo, st.ID, Chunk{Body: bytes.NewReader([]byte("never")), Length: -1, Start: -1, End: -1})
		waited <- err
	}()
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
