package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
)

// What wharf export and wharf import need of a store that no server runs
// on: enumerate what is tagged, read it, and write verified content in.
// Nothing here asks an upstream.
//
// Imported content is pinned and its tags are local tags, exactly like a
// push: on an air-gapped site the store holds the only copy, so the LRU
// must never evict it, and a pull must find the tag without asking an
// upstream that is not there.

// Tagged is a tag the store holds and the manifest it resolves to.
type Tagged struct {
	Repo       Repo
	Tag        string
	Descriptor ocispec.Descriptor
	// Local is true for pushed or imported tags, which are served without
	// an upstream; false for tags cached from the upstream.
	Local bool
}

func (t Tagged) String() string { return t.Repo.String() + ":" + t.Tag }

// TaggedImages lists every tag of every repository whose manifest is
// stored, sorted by repository and tag.
func (c *Cache) TaggedImages() ([]Tagged, error) {
	repos, err := c.Repositories()
	if err != nil {
		return nil, err
	}
	var out []Tagged
	for _, r := range repos {
		local, err := c.index.LocalTags(r.String())
		if err != nil {
			return nil, err
		}
		cached, err := c.index.Tags(r.String())
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, tag := range mergeSorted(local, cached) {
			if seen[tag] {
				continue
			}
			seen[tag] = true
			if t, err := c.Resolve(r, tag); err == nil {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// Resolve returns what repo:tag resolves to in the store, asking no
// upstream: the local tag if there is one; otherwise, of the records the
// upstream's answers left (one per Accept set), one whose manifest is
// stored, an index before an image (it holds more), the newest first.
func (c *Cache) Resolve(repo Repo, tag string) (Tagged, error) {
	if rec, err := c.index.LocalTag(repo.String(), tag); err == nil {
		if m, err := c.storedManifest(rec.Digest); err == nil {
			return Tagged{Repo: repo, Tag: tag, Descriptor: m.Descriptor, Local: true}, nil
		}
	}
	recs, err := c.index.TagRecords(repo.String(), tag)
	if err != nil {
		return Tagged{}, fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	var best *Manifest
	var bestChecked time.Time
	for _, r := range recs {
		m, err := c.storedManifest(r.Digest)
		if err != nil {
			continue
		}
		better := best == nil ||
			oci.IsIndex(m.Descriptor.MediaType) && !oci.IsIndex(best.Descriptor.MediaType) ||
			oci.IsIndex(m.Descriptor.MediaType) == oci.IsIndex(best.Descriptor.MediaType) && r.Checked.After(bestChecked)
		if better {
			best, bestChecked = m, r.Checked
		}
	}
	if best == nil {
		return Tagged{}, fmt.Errorf("tag %s:%s: %w", repo, tag, ErrNotFound)
	}
	return Tagged{Repo: repo, Tag: tag, Descriptor: best.Descriptor}, nil
}

// StoredManifest returns a stored manifest, asking no upstream.
func (c *Cache) StoredManifest(d digest.Digest) (*Manifest, error) {
	m, err := c.storedManifest(d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", d, ErrNotFound, err)
	}
	return m, nil
}

// OpenContent opens stored content (a blob or a manifest) for reading,
// asking no upstream. It is held against eviction until closed.
func (c *Cache) OpenContent(d digest.Digest) (*Blob, error) {
	b, err := c.storedBlob(c.life, d)
	if err != nil {
		return nil, fmt.Errorf("content %s: %w: %w", d, ErrNotFound, err)
	}
	return b, nil
}

// HasContent reports whether d is stored and indexed, and its size.
func (c *Cache) HasContent(d digest.Digest) (int64, bool) {
	meta, err := c.index.Blob(d)
	if err != nil {
		return 0, false
	}
	size, err := c.store.Stat(c.life, d)
	if err != nil || size != meta.Size {
		return 0, false
	}
	return size, true
}

// ImportBlob stores the bytes r yields as d, pinned. The bytes go to a
// temp file and are hashed as they pass; only when they hash to d (and
// number size, unless size < 0) is the file handed to Ingest, the door
// pushes go through too. Otherwise nothing is kept and the error is
// ErrDigestInvalid or ErrSizeInvalid. When d is stored already, r is not
// read at all.
func (c *Cache) ImportBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%q: %w: %w", d, ErrDigestInvalid, err)
	}
	if n, ok := c.HasContent(d); ok {
		return c.recordContent(d, n, "", nil, true)
	}
	f, err := c.store.TempFile()
	if err != nil {
		return err
	}
	defer f.Close()
	keep := false
	defer func() {
		if !keep {
			os.Remove(f.Name())
		}
	}()
	v, err := oci.NewVerifier(d, size)
	if err != nil {
		return fmt.Errorf("%q: %w: %w", d, ErrDigestInvalid, err)
	}
	// The verifier before the file: a write past the size fails before
	// the file holds it.
	n, err := io.Copy(io.MultiWriter(v, f), ctxReader{ctx, r})
	if err == nil {
		err = v.Verify()
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", d, badContent(err))
	}
	if err := c.Ingest(ctx, f, d, n, true); err != nil {
		return fmt.Errorf("import %s: %w", d, err)
	}
	keep = true
	return nil
}

// badContent classes a mismatch as the sender's fault (a client's push,
// an archive's content): DIGEST_INVALID or SIZE_INVALID, a 400.
func badContent(err error) error { return oci.WrapMismatch(err, ErrDigestInvalid, ErrSizeInvalid) }

// CheckManifest judges a manifest as ImportManifest does before storing
// it, against the blobs has reports (digest → stored size): its size, its
// digest (want, when set), tag, that it is a valid manifest of mediaType,
// and that every blob it references is there at its size. It returns the
// manifest's digest. An import's checking pass calls it with the blobs
// the archives hold besides, so the pass refuses exactly what the import
// would.
func CheckManifest(tag, mediaType string, want digest.Digest, body []byte, has func(digest.Digest) (int64, bool)) (digest.Digest, error) {
	if len(body) > oci.MaxManifestSize {
		return "", fmt.Errorf("manifest over %d bytes: %w", oci.MaxManifestSize, ErrTooLarge)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return "", fmt.Errorf("%q: %w: %w", want, ErrDigestInvalid, err)
		}
	}
	d, err := oci.ManifestDigest(body, want)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", badContent(err))
	}
	if tag != "" && !oci.ValidTag(tag) {
		return "", fmt.Errorf("%q: %w", tag, ErrTagInvalid)
	}
	p, err := oci.ValidateManifest(body, mediaType)
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w: %w", d, ErrManifestInvalid, err)
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		size, ok := has(b.Digest)
		if !ok {
			return "", fmt.Errorf("manifest %s: %s: %w", d, b.Digest, ErrManifestBlobUnknown)
		}
		if size != b.Size {
			return "", fmt.Errorf("manifest %s: %s is %d bytes, the manifest says %d: %w", d, b.Digest, size, b.Size, ErrManifestInvalid)
		}
	}
	return d, nil
}

// ImportManifest stores body, a manifest of mediaType, pinned, and points
// repo's local tag at it (tag "" for none: a child of an index). When want
// is set the body must hash to it. Every blob an image manifest references
// must be stored first (import verifies content bottom-up, so a tag never
// points at an incomplete image); the children an index lists may be
// missing, as when only some platforms were warmed or exported.
func (c *Cache) ImportManifest(repo Repo, tag, mediaType string, want digest.Digest, body []byte) (ocispec.Descriptor, error) {
	d, err := CheckManifest(tag, mediaType, want, body, c.HasContent)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
	if err := c.storeManifest(repo, &Manifest{Descriptor: desc, Body: body}, true); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := c.index.PutRepository(repo.String()); err != nil {
		return ocispec.Descriptor{}, err
	}
	if tag != "" {
		rec := index.TagRecord{Digest: d, MediaType: mediaType, Size: desc.Size, Checked: c.opts.Now()}
		if err := c.index.PutLocalTag(repo.String(), tag, rec); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return desc, nil
}

// ctxReader stops a long copy when ctx ends (an operator's Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// mergeSorted merges two sorted lists (duplicates stay; callers skip them).
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] <= b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
