package cache

import (
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
)

// The doors wharf import writes through; archive does the rest. A blob is
// staged in a TempFile, verified there by the importer (oci.Verifier) and
// handed to Ingest, the door pushes use too; a manifest goes through
// IngestManifest, which hashes its bytes again before they are visible.
//
// Imported content is pinned and its tags are local tags, exactly like a
// push: on an air-gapped site the store holds the only copy, so the LRU
// must never evict it, and a pull must find the tag without asking an
// upstream that is not there.

// TempFile creates an empty file to stage content in for Ingest, local to
// the store (so that Ingest moves it rather than copies it). The caller
// removes it unless Ingest took it.
func (c *Cache) TempFile() (*os.File, error) { return c.store.TempFile() }

// Pin marks stored content as imported, so the LRU never evicts it: what
// an import finds stored already is kept as if it had brought it.
func (c *Cache) Pin(d digest.Digest) error {
	size, ok := c.HasContent(d)
	if !ok {
		return fmt.Errorf("pin %s: %w", d, ErrNotFound)
	}
	return c.pin(d, size)
}

// IngestManifest stores body, a manifest of mediaType whose bytes must
// hash to d, pinned, and points repo's local tag at it (tag "" for none:
// a child of an index), as a push of it would (PushManifest). The caller has judged the manifest (valid, tag
// valid, its references present: archive's checkManifest); the store
// checks only what no caller may skip, that the bytes are the content d
// names and parse as a manifest.
func (c *Cache) IngestManifest(repo Repo, tag, mediaType string, d digest.Digest, body []byte) (ocispec.Descriptor, error) {
	if err := d.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%q: %w: %w", d, ErrDigestInvalid, err)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	m := &Manifest{Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}, Body: body}
	// The blobs are checked; an index's children may be missing.
	parsed, _ := oci.ParseManifest(body) // unparsable bytes are refused as they are stored
	if err := c.PushManifest(c.life, repo, m, oci.Pushed{Parsed: oci.Parsed{Blobs: parsed.Blobs}}, tags); err != nil {
		return ocispec.Descriptor{}, err
	}
	return m.Descriptor, nil
}
