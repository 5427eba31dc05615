package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/index"
)

// ingested records what Finish handed over, after putting it in a real
// disk store, as the cache's Ingest does.
type ingested struct {
	store *disk.Store
	mu    sync.Mutex
	got   []digest.Digest
}

func (in *ingested) Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error {
	if !pinned {
		return errors.New("pushed content must be pinned")
	}
	if err := in.store.Put(ctx, f, d, size); err != nil {
		return err
	}
	in.mu.Lock()
	in.got = append(in.got, d)
	in.mu.Unlock()
	return nil
}

// fixture is Sessions over a real index and disk store in dir.
type fixture struct {
	s   *Sessions
	idx *index.Index
	in  *ingested
	dir string
}

func open(t *testing.T, dir string, opts Options) *fixture {
	t.Helper()
	idx, err := index.Open(filepath.Join(dir, "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := &ingested{store: st}
	opts.Dir, opts.Records, opts.Ingest = filepath.Join(dir, "uploads"), idx, in
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{s: s, idx: idx, in: in, dir: dir}
	t.Cleanup(f.close)
	return f
}

func (f *fixture) close() { f.s.Close(); f.idx.Close() }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func chunk(b []byte) Chunk {
	return Chunk{Body: bytes.NewReader(b), Length: int64(len(b)), Start: -1, End: -1}
}

const repo = "example.com/team/app"

// TestFinishIngestsOnlyVerifiedBytes: chunks sent in separate requests
// reach the ingest function as one file only when they hash to the digest
// named; a wrong digest ends the session and hands nothing over.
func TestFinishIngestsOnlyVerifiedBytes(t *testing.T) {
	f := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	body := randomBytes(3000)
	d := digest.FromBytes(body)

	st, err := f.s.Start(ctx, repo, "a")
	if err != nil {
		t.Fatal(err)
	}
	if st, err = f.s.Write(ctx, repo, st.ID, chunk(body[:1000])); err != nil || st.Size != 1000 {
		t.Fatalf("Write: %+v, %v; want 1000 bytes", st, err)
	}
	if _, err := f.s.Write(ctx, repo, st.ID, Chunk{Body: bytes.NewReader(body[1000:]), Length: 2000, Start: 5, End: 2004}); !errors.As(err, new(*RangeError)) {
		t.Fatalf("a chunk at the wrong offset: %v, want a RangeError", err)
	}
	if err := f.s.Finish(ctx, "example.com/other", st.ID, chunk(body[1000:]), d); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Finish in another repository: %v, want ErrUnknown", err)
	}
	if err := f.s.Finish(ctx, repo, st.ID, chunk(body[1000:]), d); err != nil {
		t.Fatal(err)
	}
	rc, err := f.in.store.Open(ctx, d)
	if err != nil {
		t.Fatalf("finished blob not stored: %v", err)
	}
	rc.Close()
	if _, err := f.s.Status(ctx, repo, st.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("session after Finish: %v, want ErrUnknown", err)
	}

	wrong, err := f.s.Start(ctx, repo, "a")
	if err != nil {
		t.Fatal(err)
	}
	other := randomBytes(100)
	if err := f.s.Finish(ctx, repo, wrong.ID, chunk(other), digest.FromString("something else")); !errors.Is(err, ErrDigestInvalid) {
		t.Fatalf("Finish with a wrong digest: %v, want ErrDigestInvalid", err)
	}
	if _, err := f.in.store.Stat(ctx, digest.FromBytes(other)); err == nil {
		t.Error("bytes of a wrong digest were stored")
	}
	if len(f.in.got) != 1 {
		t.Errorf("ingested %v, want only %s", f.in.got, d)
	}
	if _, err := os.Stat(f.s.path(wrong.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the wrong upload's file is still there: %v", err)
	}
}

// TestSessionsSurviveARestart: a session open when the process stopped
// resumes where its record says (its running hash included, and a sha512
// digest re-reads the file), while a file with no record is removed.
func TestSessionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	f := open(t, dir, Options{})
	body := randomBytes(2048)
	st, err := f.s.Start(ctx, repo, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Write(ctx, repo, st.ID, chunk(body[:1024])); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "uploads", "left-by-a-crash")
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.close()

	f = open(t, dir, Options{})
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file without a record survived the restart: %v", err)
	}
	if got, err := f.s.Status(ctx, repo, st.ID); err != nil || got.Size != 1024 {
		t.Fatalf("after the restart: %+v, %v; want 1024 bytes", got, err)
	}
	d := digest.SHA512.FromBytes(body)
	if err := f.s.Finish(context.Background(), repo, st.ID, chunk(body[1024:]), d); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.store.Stat(context.Background(), d); err != nil {
		t.Errorf("resumed upload not stored: %v", err)
	}
}

// TestUploadSlotsFreedByEveryEnd: a session's slot comes back however it
// ends — a wrong digest, a cancel, or expiry — so no path leaks a
// client's slots; the caps hold per client and in all.
func TestUploadSlotsFreedByEveryEnd(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := open(t, t.TempDir(), Options{Expiry: time.Hour, Now: clock, Limits: Limits{Max: 5, PerClient: 2}})
	ctx := context.Background()
	fill := func(client string) []string {
		t.Helper()
		var ids []string
		for i := 0; i < 2; i++ {
			st, err := f.s.Start(ctx, repo, client)
			if err != nil {
				t.Fatalf("%s's session %d: %v", client, i+1, err)
			}
			ids = append(ids, st.ID)
		}
		if _, err := f.s.Start(ctx, repo, client); !errors.Is(err, ErrTooMany) {
			t.Fatalf("%s's third session: %v, want ErrTooMany", client, err)
		}
		return ids
	}

	ids := fill("b")
	if err := f.s.Finish(ctx, repo, ids[0], chunk(randomBytes(100)), digest.FromString("other bytes")); !errors.Is(err, ErrDigestInvalid) {
		t.Fatalf("wrong digest: %v", err)
	}
	if err := f.s.Cancel(ctx, repo, ids[1]); err != nil {
		t.Fatal(err)
	}
	fill("b") // the wrong digest and the cancel gave b's slots back

	fill("a")
	if _, err := f.s.Start(ctx, repo, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Start(ctx, repo, "d"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a sixth session: %v, want ErrTooMany (Max 5)", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if n := f.s.sweep(); n != 5 {
		t.Errorf("swept %d sessions, want 5", n)
	}
	fill("a") // expiry gave a's slots back
}

// TestLocksLeaveNothingBehind: requests naming sessions that do not exist
// (a client guessing ids) or that have ended leave no lock entry, so the
// map cannot grow with every guess.
func TestLocksLeaveNothingBehind(t *testing.T) {
	f := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		id := uuid.NewString()
		if _, err := f.s.Write(ctx, repo, id, chunk([]byte("x"))); !errors.Is(err, ErrUnknown) {
			t.Fatalf("write to a made-up session: %v, want ErrUnknown", err)
		}
		if err := f.s.Cancel(ctx, repo, id); !errors.Is(err, ErrUnknown) {
			t.Fatalf("cancel of a made-up session: %v, want ErrUnknown", err)
		}
	}
	st, err := f.s.Start(ctx, repo, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Write(ctx, "example.com/other/repo", st.ID, chunk([]byte("x"))); !errors.Is(err, ErrUnknown) {
		t.Fatalf("write from another repository: %v, want ErrUnknown", err)
	}
	b := randomBytes(10)
	if err := f.s.Finish(ctx, repo, st.ID, chunk(b), digest.FromBytes(b)); err != nil {
		t.Fatal(err)
	}
	f.s.mu.Lock()
	n := len(f.s.locks)
	f.s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d lock entries left after every request ended, want 0", n)
	}
}
