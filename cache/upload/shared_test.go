package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// Shared sessions are tested as replicas: Sessions with data directories
// of their own (index, disk store, uploads/) over one bucket of a real
// MinIO, each through an S3 client of its own.

type cluster struct {
	srv    *s3test.Server
	bucket string
	clock  *clock
	wrap   func(*countingChunks) ChunkStore // the chunk store replicas get; nil: the counting one
	// wrapRecords, when set, wraps the records store replicas get.
	wrapRecords func(records.Store) records.Store
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newCluster(t *testing.T, srv *s3test.Server) *cluster {
	return &cluster{srv: srv, bucket: srv.Bucket(t), clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
}

// replica is one replica's sessions.
type replica struct {
	*fixture
	store  *s3.Store
	chunks *countingChunks
}

// countingChunks is the S3 store's chunks, counting the reads back, which
// the local copy exists to save.
type countingChunks struct {
	s3.Chunks
	mu    sync.Mutex
	opens int
	puts  int
}

func (c *countingChunks) Put(ctx context.Context, session, chunk string, r io.Reader, size int64) (int64, error) {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Chunks.Put(ctx, session, chunk, r, size)
}

func (c *countingChunks) PutBuffered(ctx context.Context, session, chunk string, r io.Reader, buf []byte) (int64, error) {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Chunks.PutBuffered(ctx, session, chunk, r, buf)
}

func (c *countingChunks) Open(ctx context.Context, session, chunk string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opens++
	c.mu.Unlock()
	return c.Chunks.Open(ctx, session, chunk)
}

func (c *cluster) replica(t *testing.T, dir string, opts Options, timeout time.Duration) *replica {
	t.Helper()
	st, _, err := s3.Open(context.Background(), s3.Options{
		Endpoint: c.srv.Endpoint, Bucket: c.bucket, Region: "us-east-1",
		AccessKey: c.srv.User, SecretKey: c.srv.Key, PathStyle: true, Prefix: "cluster",
		Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cc := &countingChunks{Chunks: st.Chunks()}
	opts.Shared = Shared{Records: st.Records(), Chunks: cc}
	if c.wrap != nil {
		opts.Shared.Chunks = c.wrap(cc)
	}
	if c.wrapRecords != nil {
		opts.Shared.Records = c.wrapRecords(opts.Shared.Records)
	}
	if opts.Now == nil {
		opts.Now = c.clock.Now
	}
	return &replica{fixture: open(t, dir, opts), store: st, chunks: cc}
}

// keys lists what the bucket holds of upload sessions: states and chunks.
func (c *cluster) keys(t *testing.T) []string {
	return append(c.srv.Keys(t, c.bucket, "cluster/records/uploads/"), c.srv.Keys(t, c.bucket, "cluster/uploads/")...)
}

// stored checks that r's store holds d with the bytes want.
func (r *replica) stored(t *testing.T, d digest.Digest, want []byte) {
	t.Helper()
	rc, err := r.in.store.Open(context.Background(), d)
	if err != nil {
		t.Fatalf("blob %s not stored: %v", d, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob %s holds %d bytes (%v), want the %d pushed", d, len(got), err, len(want))
	}
}

func at(b []byte, start int) Chunk {
	return Chunk{Body: bytes.NewReader(b), Length: int64(len(b)), Start: int64(start), End: int64(start + len(b) - 1)}
}

// TestSharedUploadAcrossReplicas: a chunked push whose PATCHes alternate
// between two replicas, and whose PUT reaches either, completes with the
// right bytes; the session leaves nothing in the bucket.
func TestSharedUploadAcrossReplicas(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	body := randomBytes(3 << 20)
	d := digest.FromBytes(body)
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{body[:1<<20], body[1<<20 : 2<<20], body[2<<20 : 3<<20-5]}
	off := 0
	for i, p := range parts {
		r := []*replica{a, b}[i%2]
		c := at(p, off)
		if i == 1 {
			c.Length, c.Start, c.End = -1, -1, -1 // chunked encoding, no Content-Range
		}
		got, err := r.s.Write(ctx, repo, st.ID, c)
		off += len(p)
		if err != nil || got.Size != int64(off) {
			t.Fatalf("PATCH %d: %+v, %v; want %d bytes", i+1, got, err, off)
		}
	}
	for _, r := range []*replica{a, b} {
		if got, err := r.s.Status(ctx, repo, st.ID); err != nil || got.Size != int64(off) {
			t.Fatalf("Status: %+v, %v; want %d bytes on every replica", got, err, off)
		}
	}
	if err := b.s.Finish(ctx, repo, st.ID, at(body[off:], off), d); err != nil {
		t.Fatal(err)
	}
	b.stored(t, d, body)
	if keys := c.keys(t); len(keys) != 0 {
		t.Errorf("the bucket still holds %v after the push", keys)
	}
	for _, r := range []*replica{a, b} {
		if _, err := r.s.Status(ctx, repo, st.ID); !errors.Is(err, ErrUnknown) {
			t.Errorf("Status after Finish: %v, want ErrUnknown", err)
		}
	}
}

// gate holds bodies back until n readers have reached it: the requests
// have all read the session's state by then, so they race at one offset.
type gate struct {
	wg sync.WaitGroup
}

type gatedReader struct {
	r    io.Reader
	g    *gate
	once sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() { g.g.wg.Done(); g.g.wg.Wait() })
	return g.r.Read(p)
}

// TestSharedUploadRacingPatches: two replicas take a PATCH at the same
// offset at once. Exactly one is acknowledged, the other gets the range
// error with the Range that counts, and the blob is the winner's history.
func TestSharedUploadRacingPatches(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	var history []byte
	for round := 0; round < 3; round++ {
		bodies := [][]byte{randomBytes(64 << 10), randomBytes(64 << 10)}
		g := &gate{}
		g.wg.Add(2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, r := range []*replica{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch := at(bodies[i], len(history))
				ch.Body = &gatedReader{r: ch.Body, g: g}
				_, errs[i] = r.s.Write(ctx, repo, st.ID, ch)
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			var re *RangeError
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Fatalf("round %d: both PATCHes at byte %d were acknowledged", round, len(history))
			case !errors.As(err, &re) || re.Size != int64(len(history)+len(bodies[0])):
				t.Fatalf("round %d: the losing PATCH: %v, want a RangeError at %d", round, err, len(history)+len(bodies[0]))
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither PATCH acknowledged: %v", round, errs)
		}
		history = append(history, bodies[winner]...)
		if chunks := c.srv.Keys(t, c.bucket, "cluster/uploads/"); len(chunks) != round+1 {
			t.Fatalf("round %d: %d chunk objects %v, want the %d acknowledged (the loser's deleted)", round, len(chunks), chunks, round+1)
		}
	}
	if err := b.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1, Length: 0}, digest.FromBytes(history)); err != nil {
		t.Fatalf("Finish with the winners' history: %v", err)
	}
	b.stored(t, digest.FromBytes(history), history)
}

// TestSharedUploadSurvivesItsReplica: the replica that took the first
// chunks goes away with its data directory; another takes the rest and
// finishes, from the chunks in the bucket.
func TestSharedUploadSurvivesItsReplica(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	dirA := t.TempDir()
	a := c.replica(t, dirA, Options{}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	body := randomBytes(300 << 10)
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := a.s.Write(ctx, repo, st.ID, at(body[i*100<<10:(i+1)*100<<10], i*100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	// A dies in a third PATCH after its chunk was written, before the
	// state named it: a chunk that never counted.
	if _, err := a.store.Chunks().Put(ctx, st.ID, "00000002-dead", strings.NewReader("never acknowledged"), -1); err != nil {
		t.Fatal(err)
	}
	a.close()
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	if got, err := b.s.Write(ctx, repo, st.ID, at(body[200<<10:], 200<<10)); err != nil || got.Size != int64(len(body)) {
		t.Fatalf("chunk 3 on the other replica: %+v, %v", got, err)
	}
	d := digest.FromBytes(body)
	if err := b.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	b.stored(t, d, body)
	if keys := c.keys(t); len(keys) != 0 {
		t.Errorf("the bucket still holds %v after the push", keys)
	}
}

// TestSharedUploadStoreFrozen: the store stops answering during a PATCH.
// The PATCH fails within the store's timeout and is not acknowledged;
// once the store is back the client resumes from the Range it is told.
func TestSharedUploadStoreFrozen(t *testing.T) {
	srv := s3test.Own(t)
	c := newCluster(t, srv)
	a := c.replica(t, t.TempDir(), Options{}, time.Second)
	ctx := context.Background()
	body := randomBytes(200 << 10)
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, st.ID, at(body[:100<<10], 0)); err != nil {
		t.Fatal(err)
	}
	srv.Freeze(t)
	start := time.Now()
	_, err = a.s.Write(ctx, repo, st.ID, at(body[100<<10:], 100<<10))
	took := time.Since(start)
	srv.Thaw()
	if !errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrSizeInvalid) || errors.As(err, new(*RangeError)) {
		t.Fatalf("PATCH while the store is frozen: %v, want ErrStoreUnavailable", err)
	}
	if took > 30*time.Second {
		t.Errorf("the PATCH took %s to fail, want about the store's timeout", took)
	}
	got, err := a.s.Status(ctx, repo, st.ID)
	if err != nil || got.Size != 100<<10 {
		t.Fatalf("after the thaw: %+v, %v; want the %d bytes acknowledged", got, err, 100<<10)
	}
	if _, err := a.s.Write(ctx, repo, st.ID, at(body[100<<10:], int(got.Size))); err != nil {
		t.Fatalf("resume: %v", err)
	}
	d := digest.FromBytes(body)
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
}

// TestSharedUploadRefusesHostileChunks: a session answers only in its
// repository, on every replica; a made-up id, a bad Content-Range, a body
// shorter than announced and a wrong offset get the errors they get on
// one node, and none of them counts.
func TestSharedUploadRefusesHostileChunks(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, st.ID, at([]byte("first"), 0)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"another repository", func() error {
			_, err := b.s.Write(ctx, "example.com/other", st.ID, at([]byte("x"), 5))
			return err
		}, ErrUnknown},
		{"finish in another repository", func() error {
			return b.s.Finish(ctx, "example.com/other", st.ID, Chunk{Start: -1, End: -1}, digest.FromString("first"))
		}, ErrUnknown},
		{"cancel in another repository", func() error { return b.s.Cancel(ctx, "example.com/other", st.ID) }, ErrUnknown},
		{"made-up id", func() error {
			_, err := b.s.Write(ctx, repo, "9b2f4a1e-0000-4000-8000-000000000000", at([]byte("x"), 0))
			return err
		}, ErrUnknown},
		{"not an id", func() error { _, err := b.s.Status(ctx, repo, "../../records/x"); return err }, ErrUnknown},
		{"bad Content-Range", func() error {
			_, err := b.s.Write(ctx, repo, st.ID, Chunk{Body: strings.NewReader("xy"), Length: 2, Start: 5, End: 9})
			return err
		}, ErrSizeInvalid},
		{"short body", func() error {
			_, err := b.s.Write(ctx, repo, st.ID, Chunk{Body: strings.NewReader("xy"), Length: 10, Start: 5, End: 14})
			return err
		}, ErrSizeInvalid},
		{"wrong offset", func() error { _, err := b.s.Write(ctx, repo, st.ID, at([]byte("x"), 3)); return err }, ErrInvalid},
	}
	for _, tc := range cases {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got, err := b.s.Write(ctx, repo, st.ID, Chunk{Body: strings.NewReader(""), Length: -1, Start: -1, End: -1}); err != nil || got.Size != 5 {
		t.Errorf("an empty PATCH: %+v, %v; want nothing added", got, err)
	}
	if _, err := b.s.Status(ctx, repo, "{"+st.ID+"}"); !errors.Is(err, ErrUnknown) {
		t.Errorf("the session's id in another spelling: %v, want ErrUnknown", err)
	}
	if got, err := a.s.Status(ctx, repo, st.ID); err != nil || got.Size != 5 {
		t.Fatalf("after the hostile requests: %+v, %v; want the 5 bytes acknowledged", got, err)
	}
	if chunks := c.srv.Keys(t, c.bucket, "cluster/uploads/"); len(chunks) != 1 {
		t.Errorf("chunk objects %v, want the one acknowledged", chunks)
	}
}

// TestSharedUploadExpiry: any replica sweeps a session idle past the
// expiry (the one that opened it gives its slot back), and the chunks of
// sessions that no longer exist; a session that took a chunk since the
// sweep looked is not swept.
func TestSharedUploadExpiry(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	opts := Options{Expiry: time.Hour, Limits: Limits{PerClient: 1}}
	a := c.replica(t, t.TempDir(), opts, 0)
	b := c.replica(t, t.TempDir(), opts, 0)
	ctx := context.Background()
	idle, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, idle.ID, at([]byte("idle"), 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Start(ctx, repo, "client"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a second session of one client: %v, want ErrTooMany", err)
	}
	live, err := b.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	// A leftover: chunks whose session is gone.
	if _, err := b.store.Chunks().Put(ctx, "0d6e8c4a-0000-4000-8000-000000000000", "00000000-x", strings.NewReader("left"), 4); err != nil {
		t.Fatal(err)
	}
	c.clock.add(2 * time.Hour)
	if _, err := b.s.Write(ctx, repo, live.ID, at([]byte("live"), 0)); err != nil {
		t.Fatal(err)
	}
	// A sweep that read the live session before its chunk loses the race.
	st, ver, err := b.s.readState(ctx, live.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, live.ID, at([]byte("more"), 4)); err != nil {
		t.Fatal(err)
	}
	c.clock.add(2 * time.Hour)
	if b.s.endIdle(ctx, live.ID, st, ver) {
		t.Fatal("a sweep ended a session on a state older than its last acknowledged chunk")
	}
	c.clock.add(-2 * time.Hour)
	// A sweep that died after its tombstone: the next one finishes it,
	// however young the session.
	dead, err := b.s.Start(ctx, repo, "other")
	if err != nil {
		t.Fatal(err)
	}
	st, ver, err = b.s.readState(ctx, dead.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Ended = true
	if _, err := b.s.putState(ctx, dead.ID, st, records.IfMatch(ver)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Status(ctx, repo, dead.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("a tombstoned session: %v, want ErrUnknown", err)
	}

	if n := b.s.sweep(); n != 2 {
		t.Fatalf("swept %d sessions, want the idle one and the tombstoned one", n)
	}
	if _, err := a.s.Status(ctx, repo, idle.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("the idle session after the sweep: %v, want ErrUnknown", err)
	}
	if got, err := a.s.Status(ctx, repo, live.ID); err != nil || got.Size != 8 {
		t.Errorf("the live session after the sweep: %+v, %v; want its 8 bytes", got, err)
	}
	keys := c.keys(t)
	for _, k := range keys {
		if strings.Contains(k, idle.ID) || strings.Contains(k, "0d6e8c4a") {
			t.Errorf("%s left by the sweep", k)
		}
	}
	if len(keys) != 3 {
		t.Errorf("the bucket holds %v, want the live session's state and 2 chunks", keys)
	}
	a.s.sweep() // a learns that its session ended elsewhere
	if _, err := a.s.Start(ctx, repo, "client"); err != nil {
		t.Errorf("a new session after the sweep freed the slot: %v", err)
	}
}

// TestSharedUploadOneReplicaReadsNothingBack: a push whose requests all
// reach one replica finishes from that replica's local copy (a single
// PATCH reads no chunk back), and a monolithic push writes no chunk.
func TestSharedUploadOneReplicaReadsNothingBack(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	body := randomBytes(1 << 20)
	d := digest.FromBytes(body)
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, st.ID, at(body, 0)); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Finish(ctx, repo, st.ID, Chunk{Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	a.stored(t, d, body)
	if a.chunks.opens != 0 {
		t.Errorf("finishing a single-PATCH push read %d chunks back, want 0", a.chunks.opens)
	}

	whole := randomBytes(1 << 20)
	st, err = a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	before := a.chunks.puts
	if err := a.s.Finish(ctx, repo, st.ID, chunk(whole), digest.FromBytes(whole)); err != nil {
		t.Fatal(err)
	}
	a.stored(t, digest.FromBytes(whole), whole)
	if a.chunks.puts != before || len(c.keys(t)) != 0 {
		t.Errorf("a monolithic push wrote %d chunks and left %v, want none", a.chunks.puts-before, c.keys(t))
	}
}

// TestSharedUploadComposedInTheBucket: a verified session's chunks become
// the blob's object by a copy within the bucket, so the cache's Ingest
// (whose shared tier then finds it stored) uploads nothing again; chunks
// that do not hash to the digest named become nothing.
func TestSharedUploadComposedInTheBucket(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	body := randomBytes(6<<20 + 1000) // a first chunk over S3's 5 MiB minimum part
	d := digest.FromBytes(body)
	blobs := func() []string { return c.srv.Keys(t, c.bucket, "cluster/blobs/") }

	wrong, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, wrong.ID, at(body[:6<<20], 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Finish(ctx, repo, wrong.ID, at(body[6<<20:], 6<<20), digest.FromString("not these bytes")); !errors.Is(err, ErrDigestInvalid) {
		t.Fatalf("Finish with a wrong digest: %v", err)
	}
	if keys := blobs(); len(keys) != 0 {
		t.Fatalf("unverified chunks became content: %v", keys)
	}

	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Write(ctx, repo, st.ID, at(body[:6<<20], 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Finish(ctx, repo, st.ID, at(body[6<<20:], 6<<20), d); err != nil {
		t.Fatal(err)
	}
	rc, err := b.store.Open(ctx, d)
	if err != nil {
		t.Fatalf("the blob is not in the bucket: %v (keys %v)", err, blobs())
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the composed blob holds %d bytes (%v), want the %d pushed", len(got), err, len(body))
	}
}

// TestSharedUploadSlotBackWhenFinishedElsewhere: a session opened on one
// replica and finished on another gives its slot back on the first the
// moment that replica needs it, without waiting for a sweep.
func TestSharedUploadSlotBackWhenFinishedElsewhere(t *testing.T) {
	c := newCluster(t, minio.Get(t))
	a := c.replica(t, t.TempDir(), Options{Limits: Limits{PerClient: 1}}, 0)
	b := c.replica(t, t.TempDir(), Options{}, 0)
	ctx := context.Background()
	st, err := a.s.Start(ctx, repo, "client")
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(1000)
	if err := b.s.Finish(ctx, repo, st.ID, chunk(body), digest.FromBytes(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Start(ctx, repo, "client"); err != nil {
		t.Fatalf("a new session once the client's only one finished elsewhere: %v", err)
	}
	if _, err := a.s.Start(ctx, repo, "client"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a second open session of one client: %v, want ErrTooMany", err)
	}
}
