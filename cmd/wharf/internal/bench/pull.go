package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// bufSize is the read size for blob bodies: large enough that a read is a
// few syscalls' worth of data, small enough for 3 × clients of them.
const bufSize = 256 << 10

// puller pulls images for one client.
type puller struct {
	*client
	images        []image
	platform      platform
	manifestsOnly bool
	// resolveTags resolves an image given as repo:tag@digest by its tag
	// and checks that the tag names the digest (the storm); otherwise the
	// digest is pulled, as the daemon does.
	resolveTags bool
	bufs        chan []byte // one per blob in flight; also the bound on them
}

func newPuller(c *client, o *PullOptions, images []image, p platform) *puller {
	pl := &puller{client: c, images: images, platform: p, manifestsOnly: o.ManifestsOnly,
		bufs: make(chan []byte, o.Parallel)}
	c.check = !o.NoVerify
	for range o.Parallel {
		pl.bufs <- nil // allocated on first use, so --manifests-only allocates none
	}
	return pl
}

// pull makes pull number n of this client: the image is picked in turn,
// offset by the client's id so that clients spread over the images.
func (p *puller) pull(ctx context.Context, n int) error {
	return p.pullImage(ctx, p.images[(p.id+n)%len(p.images)])
}

// pullImage pulls one image: its manifest (through an index to the
// platform's), then its config and layers.
func (p *puller) pullImage(ctx context.Context, img image) error {
	ref := img.ref()
	if p.resolveTags && img.tagged {
		ref = img.tag
	}
	m, err := p.fetchManifest(ctx, img.repo, ref, img.digest)
	if err != nil {
		return err
	}
	if m.kind == "index" {
		d, err := p.platform.pick(m)
		if err != nil {
			return err
		}
		if m, err = p.fetchManifest(ctx, img.repo, d.Digest.String(), d.Digest); err != nil {
			return err
		}
		if m.kind != "image" {
			return fmt.Errorf("%w: %s: index %s names index %s for %s", ErrManifest, img, img.ref(), d.Digest, p.platform)
		}
	}
	if p.manifestsOnly {
		return nil
	}
	// The config first, then the layers, as the daemon queues them; the
	// first failure cancels the rest, as it does too.
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		buf := <-p.bufs
		if gctx.Err() != nil {
			p.bufs <- buf
			break
		}
		g.Go(func() error {
			if buf == nil {
				buf = make([]byte, p.bufLen)
			}
			defer func() { p.bufs <- buf }()
			return p.fetchBlob(gctx, img.repo, d, buf)
		})
	}
	return g.Wait()
}

// fetchBlob downloads one blob, verifying its digest and size, and
// discards it. Its latency runs from the request to the last byte. A body
// that ends before its last byte is ErrCut; one that ends cleanly with
// other bytes than the digest's is ErrDigestMismatch or ErrSizeMismatch.
func (p *puller) fetchBlob(ctx context.Context, repo string, d ocispec.Descriptor, buf []byte) (err error) {
	defer func() { p.settle(ctx, "blob", err) }()
	start := time.Now()
	resp, err := p.do(ctx, http.MethodGet, p.url("/v2/"+repo+"/blobs/"+d.Digest.String()), nil, nil, 0)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return err
	}
	defer resp.Body.Close()
	v, err := newVerifier(resp.Body, d.Digest, d.Size, p.check)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if _, err := drain(v, buf, func(n int) { p.ctr.bytes.Add(int64(n)) }); err != nil {
		if !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrSizeMismatch) {
			err = fmt.Errorf("%w: %w", ErrCut, err)
		}
		return fmt.Errorf("blob %s@%s: %w", repo, d.Digest, err)
	}
	p.rec.observe("blob", time.Since(start))
	return nil
}
