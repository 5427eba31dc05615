package push

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/upload"
)

// TestPutBlobFreesItsSlot: a monolithic upload that fails (a wrong digest,
// an unsupported one) leaves no session behind to hold its client's slot:
// the client has no session id to resume or cancel.
func TestPutBlobFreesItsSlot(t *testing.T) {
	c, err := cache.Open(cache.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := New(c, Options{UploadLimits: UploadLimits{PerClient: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	repo := cache.Repo{Upstream: "example.com", Path: "team/app"}
	body := make([]byte, 100)
	rand.Read(body)
	for _, d := range []digest.Digest{digest.FromString("other bytes"), "md5:d41d8cd98f00b204e9800998ecf8427e"} {
		for i := 0; i < 3; i++ {
			err := w.PutBlob(ctx, repo, "b", Chunk{Body: bytes.NewReader(body), Length: 100, Start: -1, End: -1}, d)
			if !errors.Is(err, cache.ErrDigestInvalid) {
				t.Fatalf("PutBlob %s: %v, want ErrDigestInvalid", d, err)
			}
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := w.StartUpload(ctx, repo, "b"); err != nil {
			t.Fatalf("session %d after the failed uploads: %v", i+1, err)
		}
	}
	d := digest.FromBytes(body)
	if err := w.PutBlob(ctx, repo, "c", Chunk{Body: bytes.NewReader(body), Length: 100, Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	if !c.Pinned(d) || !c.Holds(repo, d) {
		t.Errorf("a pushed blob must be pinned and linked to its repository (pinned %v, linked %v)", c.Pinned(d), c.Holds(repo, d))
	}
}

// TestUploadStoreDownIsUnavailable: a shared store that does not answer
// a session's request is the cache's ErrStoreUnavailable (proxy's 503,
// which clients retry); the sessions' own errors stay as they are.
func TestUploadStoreDownIsUnavailable(t *testing.T) {
	down := fmt.Errorf("upload x: %w: %w", upload.ErrStoreUnavailable, errors.New("dial tcp: connection refused"))
	if err := storeErr(down); !errors.Is(err, cache.ErrStoreUnavailable) || !errors.Is(err, upload.ErrStoreUnavailable) {
		t.Errorf("storeErr(%v) = %v, want ErrStoreUnavailable", down, err)
	}
	for _, err := range []error{nil, upload.ErrUnknown, &upload.RangeError{Size: 3}, cache.ErrDigestInvalid} {
		if got := storeErr(err); got != err {
			t.Errorf("storeErr(%v) = %v, want it unchanged", err, got)
		}
	}
}
