package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
)

// What wharf export (and a check before wharf import) reads of a store
// that no server runs on: what is tagged, and the content itself. Nothing
// here asks an upstream. How content is written in is transferseam.go.

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
	repos, err := c.localRepositories() // the tags it resolves are the index's
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
		tags := slices.Concat(local, cached)
		slices.Sort(tags)
		for _, tag := range slices.Compact(tags) { // a tag may be both
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
	if err == nil {
		return m, nil
	}
	if c.rec != nil {
		// Another replica's: from the bucket. A bucket that does not
		// answer is not "not stored": the caller (write-through) retries.
		m, err = c.sharedStoredManifest(c.life, d)
		switch {
		case err == nil:
			return m, nil
		case errors.Is(err, ErrNotFound), errors.Is(err, fs.ErrNotExist):
		default:
			if down := c.storeDown(err); down != nil {
				err = down
			}
			return nil, fmt.Errorf("manifest %s: %w", d, err)
		}
	}
	return nil, fmt.Errorf("manifest %s: %w: %w", d, ErrNotFound, err)
}

// ContentSize is HasContent for a caller that must tell content that is
// not stored (ErrNotFound) from a store that does not answer (any other
// error: try again later).
func (c *Cache) ContentSize(d digest.Digest) (int64, error) {
	if size, ok := c.HasContent(d); ok {
		return size, nil
	}
	_, err := c.store.Stat(c.life, d)
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("content %s: %w", d, ErrNotFound)
	}
	if down := c.storeDown(err); down != nil {
		err = down
	}
	return 0, fmt.Errorf("content %s: %w", d, err)
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

// HasContent reports whether d is stored and indexed, and its size. A
// replica of a cluster also has what another replica stored in the
// shared store (every replica verified what it put there).
func (c *Cache) HasContent(d digest.Digest) (int64, bool) {
	meta, err := c.index.Blob(d)
	if err != nil && c.rec != nil {
		size, err := c.store.Stat(c.life, d)
		return size, err == nil
	}
	if err != nil {
		return 0, false
	}
	size, err := c.store.Stat(c.life, d)
	if err != nil || size != meta.Size {
		return 0, false
	}
	return size, true
}
