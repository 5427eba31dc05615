package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream"
)

// claimingOrigin answers 200 to every blob HEAD, as an upstream that
// knows a digest can, and sends only the blobs it holds: a fault a real
// registry does not make on demand.
type claimingOrigin struct {
	Origin
	holds map[digest.Digest][]byte
}

func (o claimingOrigin) Name() string { return "mirror.test" }

func (o claimingOrigin) HeadBlob(context.Context, string, digest.Digest) (int64, error) {
	return 1, nil
}

func (o claimingOrigin) GetBlob(_ context.Context, _ string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	b, ok := o.holds[d]
	if !ok {
		return nil, 0, upstream.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), int64(len(b)) - offset, nil
}

// TestPushedContentNeedsTheUpstreamsBytes: invariant 8. Content pushed to
// one repository is not opened to a mirrored repository whose upstream
// only claims it with a HEAD: the read is a not-found and nothing is
// linked. An upstream that sends the very bytes does open it (it could
// serve them itself).
func TestPushedContentNeedsTheUpstreamsBytes(t *testing.T) {
	secret, public := randomBytes(1000), randomBytes(1000)
	o := claimingOrigin{holds: map[digest.Digest][]byte{digest.FromBytes(public): public}}
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{o}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	team := Repo{Upstream: "mirror.test", Path: "team/private"}
	mirrored := Repo{Upstream: "mirror.test", Path: "library/alpine"}
	for _, body := range [][]byte{secret, public} {
		if err := c.LinkUploaded(t.Context(), team, ingestBytes(t, c, body)); err != nil {
			t.Fatal(err)
		}
	}
	ds, dp := digest.FromBytes(secret), digest.FromBytes(public)

	if b, err := c.Blob(t.Context(), mirrored, ds); !errors.Is(err, ErrNotFound) {
		if b != nil {
			b.Close()
		}
		t.Errorf("pushed blob through a mirrored name on a HEAD alone: %v, want ErrNotFound", err)
	}
	if _, err := c.StatBlob(t.Context(), mirrored, ds); !errors.Is(err, ErrNotFound) {
		t.Errorf("HEAD of the pushed blob through a mirrored name: %v, want ErrNotFound", err)
	}
	if c.Holds(mirrored, ds) {
		t.Error("the mirrored repository was linked to pushed content on a HEAD")
	}

	b, err := c.Blob(t.Context(), mirrored, dp)
	if err != nil {
		t.Fatalf("pushed blob the upstream sends too: %v", err)
	}
	b.Close()
	if !c.Holds(mirrored, dp) {
		t.Error("the upstream sent the bytes, and the mirrored repository is not linked")
	}
}
