package cache

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wharf-mirror/wharf/oci"
)

// warmAccept is what Warm asks for: every manifest kind, so a
// multi-platform image is kept as its index (which export can carry whole)
// rather than as whatever one client's platform would get.
var warmAccept = oci.ServedManifests

// warmParallel is how many blobs of one image Warm fetches at once: enough
// to overlap round trips, few enough to stay polite to the upstream.
const warmParallel = 4

// WarmReport is what one Warm did.
type WarmReport struct {
	Descriptor ocispec.Descriptor // what ref resolved to
	Manifests  int                // manifests walked (the index and its children)
	Blobs      int                // blobs the images reference
	Fetched    int                // of those, fetched from the upstream now
	Bytes      int64              // bytes fetched from the upstream now
}

// Warm fills repo:ref (a tag or a digest) into the store through the read
// path, exactly as a client pulling it would: the manifest, the children of
// an index that match platforms (all of them when platforms is empty), and
// every blob they reference, each fill read to its end so that it is
// verified and kept. progress, if set, is called with each chunk of bytes
// read (from several goroutines).
func (c *Cache) Warm(ctx context.Context, repo Repo, ref string, platforms []ocispec.Platform, progress func(n int64)) (WarmReport, error) {
	var rep WarmReport
	m, err := c.Manifest(ctx, repo, ref, warmAccept)
	if err != nil {
		return rep, err
	}
	rep.Descriptor = m.Descriptor
	if err := c.warmManifest(ctx, repo, m, platforms, progress, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

func (c *Cache) warmManifest(ctx context.Context, repo Repo, m *Manifest, platforms []ocispec.Platform, progress func(int64), rep *WarmReport) error {
	rep.Manifests++
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Descriptor.Digest, err)
	}
	if oci.IsIndex(m.Descriptor.MediaType) {
		matched := 0
		for _, child := range p.Manifests {
			if !oci.MatchPlatform(child.Platform, platforms) {
				continue
			}
			matched++
			cm, err := c.Manifest(ctx, repo, child.Digest.String(), warmAccept)
			if err != nil {
				return err
			}
			if err := c.warmManifest(ctx, repo, cm, platforms, progress, rep); err != nil {
				return err
			}
		}
		if matched == 0 {
			return fmt.Errorf("%s@%s lists no manifest for %s: %w", repo, m.Descriptor.Digest, oci.FormatPlatforms(platforms), ErrNotFound)
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(warmParallel)
	fetched := make([]int64, len(p.Blobs)) // -1: was already stored
	for i, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		rep.Blobs++
		g.Go(func() error {
			n, err := c.warmBlob(gctx, repo, b.Digest, progress)
			fetched[i] = n
			return err
		})
	}
	err = g.Wait()
	for _, n := range fetched {
		if n > 0 {
			rep.Fetched++
			rep.Bytes += n
		}
	}
	return err
}

// warmBlob makes sure d is stored: a hit costs a stat, a miss is read from
// its fill to the end (which returns only after the digest checked out)
// and waits for the fill to store it.
// It returns the bytes fetched.
func (c *Cache) warmBlob(ctx context.Context, repo Repo, d digest.Digest, progress func(int64)) (int64, error) {
	b, err := c.Blob(ctx, repo, d)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if b.File != nil {
		return 0, nil
	}
	n, err := io.Copy(progressWriter(progress), b.Fill.Reader(ctx, 0))
	if err == nil {
		err = b.Fill.Wait(ctx) // the end is readable before it is stored
	}
	if err != nil {
		return n, fmt.Errorf("blob %s@%s: %w", repo, d, err)
	}
	if _, ok := c.HasContent(d); !ok {
		return n, fmt.Errorf("blob %s@%s was fetched but not kept (larger than the cache's max size, or the disk is full)", repo, d)
	}
	return n, nil
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}
