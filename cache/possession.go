package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/oci"
)

// Proving that an upstream holds pushed content (mayServe) costs at most
// proofRanges ranges of proofRange bytes at random offsets for a blob past
// proofWhole, and the whole blob below it: an upstream that knows a digest
// but not its bytes cannot answer ranges it cannot predict.
const (
	proofWhole   = 256 << 10
	proofRange   = 64 << 10
	proofRanges  = 2
	proofTimeout = 30 * time.Second
)

// errNotSent: the upstream's bytes for a range are not the stored ones.
var errNotSent = errors.New("the upstream's bytes differ from the stored content")

// upstreamSends checks that o sends d's bytes under repo's name, and
// then links repo; the bytes are compared with the stored content and
// dropped. Concurrent callers for one repository and digest share one
// check, which runs detached from them (a client leaving does not waste
// it), bounded by proofTimeout; it links before it ends, and one started
// after finds the link, so the upstream is asked once.
func (c *Cache) upstreamSends(ctx context.Context, o Origin, repo Repo, d digest.Digest, manifest bool) error {
	key := flightPrefix(ctx) + "p\x00" + repo.String() + "\x00" + d.String()
	_, err := detached(ctx, c, key, func(ctx context.Context) (struct{}, error) {
		if c.linked(repo, d) {
			return struct{}{}, nil // by a check that ended as this one began
		}
		ctx, cancel := context.WithTimeout(ctx, proofTimeout)
		defer cancel()
		var err error
		if manifest {
			err = c.upstreamSendsManifest(ctx, o, repo, d)
		} else {
			err = c.upstreamSendsBlob(ctx, o, repo, d)
		}
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, c.link(repo, d)
	})
	return err
}

func (c *Cache) upstreamSendsManifest(ctx context.Context, o Origin, repo Repo, d digest.Digest) error {
	m, err := o.GetManifest(ctx, repo.Path, d.String(), oci.ServedManifests)
	if err != nil {
		return err
	}
	return oci.VerifyBytes(m.Body, d)
}

// upstreamSendsBlob reads random ranges of d from a BlobRanger, or the
// whole blob, never more than the stored size (unknown: refused).
func (c *Cache) upstreamSendsBlob(ctx context.Context, o Origin, repo Repo, d digest.Digest) error {
	size, ok := c.HasContent(d)
	if !ok {
		return fmt.Errorf("%s: stored size unknown: %w", d, ErrNotFound)
	}
	if r, ok := o.(BlobRanger); ok && size > proofWhole {
		err := c.upstreamSendsRanges(ctx, r, repo, d, size)
		if !errors.Is(err, ErrNoRanges) {
			return err
		}
	}
	body, _, err := o.GetBlob(ctx, repo.Path, d, 0)
	if err != nil {
		return err
	}
	defer body.Close()
	return verifyWhole(body, d, size)
}

// upstreamSendsRanges compares proofRanges random ranges of d from r with
// the stored bytes. An upstream that ignores Range sends the whole blob,
// which is then verified as one.
func (c *Cache) upstreamSendsRanges(ctx context.Context, r BlobRanger, repo Repo, d digest.Digest, size int64) error {
	f, err := c.store.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", d, ErrNotFound, err)
	}
	defer f.Close()
	want, got := make([]byte, proofRange), make([]byte, proofRange)
	for range proofRanges {
		off := rand.Int64N(size - proofRange + 1)
		body, total, whole, err := r.GetBlobRange(ctx, repo.Path, d, off, proofRange, false)
		if err != nil {
			return err
		}
		if whole {
			err := verifyWhole(body, d, size)
			body.Close()
			return err
		}
		_, err = io.ReadFull(body, got)
		body.Close()
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || total >= 0 && total != size:
			return fmt.Errorf("%s: range at %d: %w", d, off, errNotSent)
		case err != nil:
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if _, err := io.ReadFull(f, want); err != nil {
			return fmt.Errorf("%s: reading the stored range at %d: %w", d, off, err)
		}
		if !bytes.Equal(want, got) {
			return fmt.Errorf("%s: range at %d: %w", d, off, errNotSent)
		}
	}
	return nil
}

// verifyWhole reads body, at most size bytes, and checks them against d.
func verifyWhole(body io.Reader, d digest.Digest, size int64) error {
	v, err := oci.NewVerifier(d, size)
	if err != nil {
		return err
	}
	if _, err := io.Copy(v, body); err != nil {
		return err
	}
	return v.Verify()
}
