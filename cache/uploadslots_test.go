package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestUploadSlotsFreedByEveryEnd: a session's slot comes back however it
// ends — a failed monolithic upload (a wrong digest, an unsupported one),
// or expiry — so no path leaks a client's slots.
func TestUploadSlotsFreedByEveryEnd(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := Open(Options{Dir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := NewWriter(c, WriterOptions{UploadExpiry: time.Hour, UploadLimits: UploadLimits{Max: 10, PerClient: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	repo := Repo{Upstream: "example.com", Path: "team/app"}
	fill := func(client string) {
		t.Helper()
		for i := 0; i < 2; i++ {
			if _, err := w.StartUpload(ctx, repo, client); err != nil {
				t.Fatalf("%s's session %d: %v", client, i+1, err)
			}
		}
		if _, err := w.StartUpload(ctx, repo, client); !errors.Is(err, ErrTooManyUploads) {
			t.Fatalf("%s's third session: %v, want ErrTooManyUploads", client, err)
		}
	}

	body := randomBytes(100)
	for _, d := range []digest.Digest{digest.FromString("other bytes"), "md5:d41d8cd98f00b204e9800998ecf8427e"} {
		for i := 0; i < 3; i++ {
			err := w.PutBlob(ctx, repo, "b", Chunk{Body: bytes.NewReader(body), Length: 100, Start: -1, End: -1}, d)
			if !errors.Is(err, ErrDigestInvalid) {
				t.Fatalf("PutBlob %s: %v, want ErrDigestInvalid", d, err)
			}
		}
	}
	fill("b") // the failed monolithic uploads hold nothing

	fill("a")
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if n := w.sweepUploads(); n != 4 {
		t.Errorf("swept %d sessions, want 4", n)
	}
	fill("a") // expiry gave a's slots back
}
