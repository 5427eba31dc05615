package push

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// PushedManifest is what a manifest PUT stored.
type PushedManifest struct {
	Descriptor ocispec.Descriptor
	// Subject is the manifest's OCI 1.1 subject, "" without one.
	Subject digest.Digest
	// Tags are the tags now pointing at it in the repository.
	Tags []string
}

// PutManifest stores a manifest a client pushed to repo under ref (a tag,
// or the digest its bytes must hash to), and under each of tags (OCI 1.1
// ?tag= parameters). The body must be a manifest of mediaType, at most
// oci.MaxManifestSize, whose every blob and child manifest repo holds.
// The manifest is pinned, indexed for the referrers API when it has a
// subject, and queued for write-through when that is on (in synchronous
// mode PutManifest returns once the upstream has it).
func (w *Writer) PutManifest(ctx context.Context, repo cache.Repo, ref, mediaType string, body io.Reader, tags []string) (*PushedManifest, error) {
	b, err := io.ReadAll(io.LimitReader(body, oci.MaxManifestSize+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("manifest body: %w: %w", cache.ErrSizeInvalid, err)
		}
		return nil, fmt.Errorf("manifest body: %w", err)
	}
	if len(b) > oci.MaxManifestSize {
		return nil, fmt.Errorf("manifest over %d bytes: %w", oci.MaxManifestSize, cache.ErrTooLarge)
	}
	want, err := digest.Parse(ref)
	if err == nil {
		if !want.Algorithm().Available() {
			return nil, fmt.Errorf("%q: algorithm not supported: %w", ref, cache.ErrDigestInvalid)
		}
	} else {
		want = ""
		tags = append([]string{ref}, tags...)
	}
	d, err := oci.ManifestDigest(b, want)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", cache.BadContent(err))
	}
	for _, t := range tags {
		if !oci.ValidTag(t) {
			return nil, fmt.Errorf("%q: %w", t, cache.ErrTagInvalid)
		}
	}
	for _, t := range tags {
		if err := w.mayPushTag(ctx, repo, t); err != nil {
			return nil, err
		}
	}
	p, err := oci.ValidateManifest(b, mediaType)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", cache.ErrManifestInvalid, err)
	}
	if err := w.checkReferences(repo, p); err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	if err := w.c.PushManifest(ctx, repo, &cache.Manifest{Descriptor: desc, Body: b}, p, tags); err != nil {
		return nil, err
	}
	out := &PushedManifest{Descriptor: desc, Tags: tags}
	if p.Subject != nil {
		out.Subject = p.Subject.Digest
	}
	if w.wt != nil {
		if err := w.wt.Push(ctx, repo, tags, d); err != nil {
			return out, err
		}
	}
	return out, nil
}

// checkReferences makes sure every blob and child manifest p names is
// held by repo (pulled through it, pushed, mounted or imported into it)
// and stored here; non-distributable layers are exempt by definition.
// Content stored for other repositories only is unknown, with no size
// said: a manifest must not open what its repository does not hold.
//
// Unlike a read, a PUT does not ask the upstream to vouch for an unlinked
// reference: every pushing client (docker, go-containerregistry, oras)
// HEADs, uploads or mounts each reference in the target repository before
// the PUT, and a HEAD the upstream vouches for links it then. Asking again
// here would cost a round trip per layer and make pushes fail while the
// upstream is down.
func (w *Writer) checkReferences(repo cache.Repo, p oci.Pushed) error {
	for _, group := range [][]ocispec.Descriptor{p.Blobs, p.Manifests} {
		for _, ref := range group {
			if oci.Foreign(ref) {
				continue
			}
			size, ok := w.c.HeldSize(repo, ref.Digest)
			if !ok {
				return fmt.Errorf("%s: %w", ref.Digest, cache.ErrManifestBlobUnknown)
			}
			if ref.Size != size {
				return fmt.Errorf("%s is %d bytes, the manifest says %d: %w", ref.Digest, size, ref.Size, cache.ErrManifestInvalid)
			}
		}
	}
	return nil
}
