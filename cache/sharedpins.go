package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/oci"
)

// What tags reach, asked of the cluster's records: the replica evicting
// from the bucket resolves storage.pins there, and wharf gc keeps what
// any replica's tag reaches. A tag record names a manifest; the manifest's
// references come from its bytes in the store, since the asking replica
// may know it only by size (adopted from the bucket's listing, unread).
// What is read is kept in the index record, so evict.Plan protects the
// layers, and the next run reads nothing again.

// root is a manifest a tag names, with the media type its record says.
type root struct {
	digest    digest.Digest
	mediaType string
}

// sharedPinRoots resolves pins from the bucket: every digest any replica
// recorded for a pinned tag, pushed (tags/) or mirrored (mirror/, every
// Accept set's record); every tag of the repository for a pin without
// one.
func (c *Cache) sharedPinRoots(ctx context.Context, pins []Pin) ([]root, error) {
	var out []root
	add := func(r root) error { out = append(out, r); return nil }
	for _, p := range pins {
		var tagged, mirrored string
		var err error
		if p.Tag == "" {
			if tagged, err = sharedTagsPrefix(p.Repo); err == nil {
				mirrored, err = sharedMirrorRepoPrefix(p.Repo)
			}
		} else {
			if tagged, err = sharedTagKey(p.Repo, p.Tag); err == nil {
				mirrored, err = sharedMirrorPrefix(p.Repo, p.Tag)
			}
		}
		if err != nil {
			continue // a pin no record can name
		}
		for _, prefix := range []string{tagged, mirrored} {
			if err := c.sharedTagRoots(ctx, prefix, add); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// sharedTagRoots calls fn with the manifest each tag record listed under
// prefix (a key of tags/ or mirror/, or a prefix of either) names.
func (c *Cache) sharedTagRoots(ctx context.Context, prefix string, fn func(root) error) error {
	var keys []string
	if err := c.rec.store.List(ctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	for _, k := range keys {
		sk, ok := parseSharedKey(k)
		if !ok || !strings.HasSuffix(prefix, "/") && k != prefix {
			continue // listing a key lists longer ones too: v1 lists v10
		}
		var r root
		var err error
		switch sk.kind {
		case sharedTagsDir:
			var t sharedTag
			err = c.getShared(ctx, k, &t)
			r = root{t.Digest, t.MediaType}
		case sharedMirrorDir:
			var m sharedMirror
			err = c.getShared(ctx, k, &m)
			r = root{m.Digest, m.MediaType}
		default:
			continue
		}
		switch {
		case errors.Is(err, records.ErrNotFound):
			continue // deleted since the listing
		case err != nil:
			return fmt.Errorf("read %s: %w", k, err)
		}
		if r.digest.Validate() != nil {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// knowTree makes the index know the references of manifest r and,
// for an index, of its child manifests, and theirs: a manifest the
// index holds without them (adopted unread) is read from the store and
// its record upgraded. Content the index does not hold is skipped
// (nothing of it to protect or remove); so is a manifest gone from the
// store meanwhile. The walk keeps a queue of descriptors, not the
// parsed parents; seen stops a walk that meets a digest twice.
func (c *Cache) knowTree(ctx context.Context, r root, seen map[digest.Digest]bool) error {
	queue := []root{r}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if seen[r.digest] {
			continue
		}
		seen[r.digest] = true
		children, err := c.knowManifest(ctx, r)
		if err != nil {
			return err
		}
		queue = append(queue, children...)
	}
	return nil
}

// knowManifest is knowTree's step: it makes the index know r's
// references and returns r's child manifests, if r is an index.
func (c *Cache) knowManifest(ctx context.Context, r root) ([]root, error) {
	meta, err := c.index.Blob(r.digest)
	if errors.Is(err, index.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	mediaType := meta.MediaType
	if mediaType == "" {
		mediaType = r.mediaType
	}
	known := meta.MediaType != "" // recorded as a manifest: its refs with it
	if mediaType == "" || (known && !oci.IsIndex(mediaType)) {
		return nil, nil // a blob, or a manifest whose refs are known and has no children
	}
	p, err := c.treeManifest(ctx, r.digest, mediaType)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, ErrDigestInvalid), errors.Is(err, ErrManifestInvalid), errors.Is(err, ErrTooLarge):
		// Not a manifest it can read: it protects only itself (a failed
		// read, by contrast, stops the run).
		c.log.WithError(err).WithField("digest", r.digest).Warn("a tag's manifest in the store cannot be read")
		return nil, nil
	case err != nil:
		return nil, err
	}
	if !known {
		if err := c.recordRefs(r.digest, mediaType, p.Refs()); err != nil {
			return nil, err
		}
	}
	children := make([]root, 0, len(p.Manifests))
	for _, m := range p.Manifests {
		children = append(children, root{m.Digest, m.MediaType})
	}
	return children, nil
}

// recordRefs upgrades the index record of content known by size alone
// to a manifest's: its media type and references.
func (c *Cache) recordRefs(d digest.Digest, mediaType string, refs []digest.Digest) error {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	meta, err := c.index.Blob(d)
	if errors.Is(err, index.ErrNotFound) || (err == nil && meta.MediaType != "") {
		return nil // removed, or recorded meanwhile
	} else if err != nil {
		return err
	}
	meta.MediaType, meta.Refs = mediaType, refs
	if err := c.index.PutBlob(d, meta); err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	return nil
}

// knowTrees runs knowTree over roots and returns their digests.
func (c *Cache) knowTrees(ctx context.Context, roots []root, seen map[digest.Digest]bool) ([]digest.Digest, error) {
	out := make([]digest.Digest, 0, len(roots))
	for _, r := range roots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.knowTree(ctx, r, seen); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", r.digest, err)
		}
		out = append(out, r.digest)
	}
	return out, nil
}

// treeManifest parses manifest d from the hot set when it is there (an
// index a pin names is read on every pass of the leader's eviction),
// else from the store.
func (c *Cache) treeManifest(ctx context.Context, d digest.Digest, mediaType string) (oci.Parsed, error) {
	if m, ok := c.manifests.Get(d); ok {
		p, err := oci.ParseManifest(m.Body)
		if err != nil {
			return p, fmt.Errorf("manifest %s: %w: %w", d, ErrManifestInvalid, err)
		}
		return p, nil
	}
	return c.sharedManifest(ctx, d, mediaType)
}
