package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
)

// A replica whose index is empty (a new replica, or one whose data
// directory was lost) rebuilds it from the records at Open, before the
// reconciliation: links with their content's records (pins included),
// pushed tags, mirrored tags with their stamps, referrers and the
// catalog's repositories, so that it serves what the cluster holds
// without asking the upstream, and the reconciliation finds the bucket's
// content known instead of hashing it again. The listing streams, one record read at a time, into one
// batched write: memory does not grow with the records. The listing is
// in key order, so every link of one digest comes together and the
// content's record is written once, when the next digest begins.
//
// A rebuild cut short (the bucket failed) leaves a correct subset: every
// request still learns what the index lacks from the bucket.

// Rebuilt says what a rebuild loaded.
type Rebuilt struct {
	Links, Blobs, PushedTags, MirroredTags, Referrers, Repositories int
}

func (c *Cache) rebuild(ctx context.Context) (Rebuilt, error) {
	var r Rebuilt
	if c.rec == nil {
		return r, nil
	}
	if empty, err := c.index.Empty(); err != nil || !empty {
		return r, err
	}
	l := c.index.Load()
	var (
		cur  digest.Digest // the digest whose links are being read
		meta index.BlobMeta
	)
	endBlob := func() error {
		if cur == "" {
			return nil
		}
		d := cur
		cur = ""
		if meta.MediaType != "" {
			refs, err := c.sharedManifestRefs(ctx, d, meta.MediaType)
			if err != nil {
				c.log.WithError(err).WithField("digest", d).Warn("rebuild: a manifest the bucket links cannot be read; left to be fetched again")
				return nil
			}
			meta.Refs = refs
		}
		r.Blobs++
		return l.Blob(d, meta)
	}
	load := func(key string) error {
		k, ok := parseSharedKey(key)
		if !ok {
			return nil
		}
		if k.kind != sharedLinksDir || k.digest != cur {
			if err := endBlob(); err != nil {
				return err
			}
		}
		var err error
		switch k.kind {
		case sharedLinksDir:
			var s sharedLink
			if err = c.getShared(ctx, key, &s); err == nil {
				if cur == "" {
					cur, meta = k.digest, index.BlobMeta{Size: s.Size, MediaType: s.MediaType, Added: c.opts.Now()}
				}
				meta.Pinned = meta.Pinned || s.Pinned
				r.Links++
				err = l.Link(k.repo.String(), k.digest)
			}
		case sharedTagsDir:
			var s sharedTag
			if err = c.getShared(ctx, key, &s); err == nil {
				r.PushedTags++
				err = l.LocalTag(k.repo.String(), k.tag, index.TagRecord{Digest: s.Digest, MediaType: s.MediaType, Size: s.Size, Checked: s.Pushed})
			}
		case sharedRefersDir:
			var s ocispec.Descriptor
			if err = c.getShared(ctx, key, &s); err == nil && s.Digest == k.digest {
				r.Referrers++
				err = l.Referrer(k.repo.String(), k.subject, s)
			}
		case sharedReposDir:
			r.Repositories++
			err = l.Repository(k.repo.String())
		case sharedMirrorDir:
			var s sharedMirror
			if err = c.getShared(ctx, key, &s); err == nil {
				r.MirroredTags++
				err = l.Tag(k.repo.String(), k.tag, s.Accept, index.TagRecord{Digest: s.Digest, MediaType: s.MediaType, Size: s.Size, Checked: s.Checked})
			}
		}
		if errors.Is(err, records.ErrNotFound) {
			return nil // deleted since the listing
		}
		return err
	}
	// Only these kinds (the bucket's records hold upload sessions, leases
	// and the write-through queue too), links first.
	var err error
	for _, dir := range []string{sharedLinksDir, sharedMirrorDir, sharedTagsDir, sharedRefersDir, sharedReposDir} {
		if err = c.rec.store.List(ctx, dir, load); err != nil {
			break
		}
	}
	if err == nil {
		err = endBlob()
	}
	if ferr := l.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return r, fmt.Errorf("rebuild the index from the shared records: %w", err)
	}
	return r, nil
}
