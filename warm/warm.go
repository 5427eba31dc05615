package warm

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// Store is the read path warming pulls through, the one a client's pull
// takes; *cache.Cache satisfies it.
type Store interface {
	// Manifest returns repo's manifest by tag or digest, fetching it on a
	// miss.
	Manifest(ctx context.Context, repo cache.Repo, ref string, accept []string) (*cache.Manifest, error)
	// Blob returns a stored blob, or the fill bringing it.
	Blob(ctx context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error)
	// HasContent reports whether d is stored, after its fill.
	HasContent(d digest.Digest) (int64, bool)
}

// accept is what warming asks for: every manifest kind, so a
// multi-platform image is kept as its index (which export can carry whole)
// rather than as whatever one client's platform would get.
var accept = oci.ServedManifests

// parallel is how many blobs of one image are fetched at once: enough to
// overlap round trips, few enough to stay polite to the upstream.
const parallel = 4

// Report is what warming one image did.
type Report struct {
	Descriptor ocispec.Descriptor // what ref resolved to
	Manifests  int                // manifests walked (the index and its children)
	Blobs      int                // blobs the images reference
	Fetched    int                // of those, fetched from the upstream now
	Bytes      int64              // bytes fetched from the upstream now
}

// Image fills repo:ref (a tag or a digest) into s through the read path,
// exactly as a client pulling it would: the manifest, the children of an
// index that match platforms (all of them when platforms is empty), and
// every blob they reference, each fill read to its end so that it is
// verified and kept. progress, if set, is called with each chunk of bytes
// read (from several goroutines).
func Image(ctx context.Context, s Store, repo cache.Repo, ref string, platforms []ocispec.Platform, progress func(n int64)) (Report, error) {
	var rep Report
	m, err := s.Manifest(ctx, repo, ref, accept)
	if err != nil {
		return rep, err
	}
	rep.Descriptor = m.Descriptor
	w := warmer{s: s, repo: repo, platforms: platforms, progress: progress, rep: &rep}
	if err := w.manifest(ctx, m); err != nil {
		return rep, err
	}
	return rep, nil
}

// warmer is one Image call's walk.
type warmer struct {
	s         Store
	repo      cache.Repo
	platforms []ocispec.Platform
	progress  func(int64)
	rep       *Report
}

func (w warmer) manifest(ctx context.Context, m *cache.Manifest) error {
	w.rep.Manifests++
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Descriptor.Digest, err)
	}
	if oci.IsIndex(m.Descriptor.MediaType) {
		matched := 0
		for _, child := range p.Manifests {
			if !oci.MatchPlatform(child.Platform, w.platforms) {
				continue
			}
			matched++
			cm, err := w.s.Manifest(ctx, w.repo, child.Digest.String(), accept)
			if err != nil {
				return err
			}
			if err := w.manifest(ctx, cm); err != nil {
				return err
			}
		}
		if matched == 0 {
			return fmt.Errorf("%s@%s lists no manifest for %s: %w", w.repo, m.Descriptor.Digest, oci.FormatPlatforms(w.platforms), cache.ErrNotFound)
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	fetched := make([]int64, len(p.Blobs)) // 0: was already stored
	for i, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		w.rep.Blobs++
		g.Go(func() error {
			n, err := w.blob(gctx, b.Digest)
			fetched[i] = n
			return err
		})
	}
	err = g.Wait()
	for _, n := range fetched {
		if n > 0 {
			w.rep.Fetched++
			w.rep.Bytes += n
		}
	}
	return err
}

// blob makes sure d is stored: a hit costs a stat, a miss is read from
// its fill to the end (which returns only after the digest checked out)
// and waits for the fill to store it.
// It returns the bytes fetched.
func (w warmer) blob(ctx context.Context, d digest.Digest) (int64, error) {
	b, err := w.s.Blob(ctx, w.repo, d)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if b.File != nil {
		return 0, nil
	}
	n, err := io.Copy(progressWriter(w.progress), b.Fill.Reader(ctx, 0))
	if err == nil {
		err = b.Fill.Wait(ctx) // the end is readable before it is stored
	}
	if err != nil {
		return n, fmt.Errorf("blob %s@%s: %w", w.repo, d, err)
	}
	if _, ok := w.s.HasContent(d); !ok {
		return n, fmt.Errorf("blob %s@%s was fetched but not kept (larger than the cache's max size, or the disk is full)", w.repo, d)
	}
	return n, nil
}

// progressWriter counts the bytes a fill yields for the caller's
// progress; the bytes themselves are dropped, since the fill keeps them.
type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}
