package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/oci"
)

// Links in the shared records: written, checked and learned (shared.go
// says when each happens).

// shareLinksLater shares repo's links to ds in the background, each once
// its content is recorded. Which are recorded already is read there too:
// a client need not wait for the index.
func (c *Cache) shareLinksLater(repo Repo, ds ...digest.Digest) {
	if c.rec == nil {
		return
	}
	ds = slices.Clone(ds) // the caller's to reuse
	c.later("put", repo.String(), func(ctx context.Context) error {
		var known []digest.Digest
		for _, d := range ds {
			if _, err := c.index.Blob(d); err == nil {
				known = append(known, d)
				continue
			}
			c.rec.pendingMu.Lock()
			if len(c.rec.pending) >= sharedPending {
				// Mostly a manifest's references no one fetched (an index's
				// other platforms): their fill, if it comes, links them again.
				clear(c.rec.pending)
			}
			if !slices.Contains(c.rec.pending[d], repo) {
				c.rec.pending[d] = append(c.rec.pending[d], repo)
			}
			c.rec.pendingMu.Unlock()
		}
		if len(known) == 0 {
			return nil
		}
		return c.shareLinks(ctx, repo, false, known...)
	})
}

// recorded shares the links that waited for d to be recorded.
func (c *Cache) recorded(d digest.Digest) {
	if c.rec == nil {
		return
	}
	c.rec.pendingMu.Lock()
	repos := c.rec.pending[d]
	delete(c.rec.pending, d)
	c.rec.pendingMu.Unlock()
	for _, repo := range repos {
		c.later("put", repo.String(), func(ctx context.Context) error { return c.shareLinks(ctx, repo, false, d) })
	}
}

// shareLinks writes repo's links to ds to the bucket, each with what the
// index knows of its content, at most sharedWriters at once. Content the
// index does not know is skipped: nothing to vouch for.
func (c *Cache) shareLinks(ctx context.Context, repo Repo, pinned bool, ds ...digest.Digest) error {
	_, err := c.shareKnownLinks(ctx, repo, pinned, ds)
	return err
}

// shareKnownLinks is shareLinks, reporting the content it skipped
// (pushes refuse it: linkPushed).
func (c *Cache) shareKnownLinks(ctx context.Context, repo Repo, pinned bool, ds []digest.Digest) (unknown []digest.Digest, err error) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(sharedWriters)
	for _, d := range ds {
		key, err := sharedLinkKey(repo, d)
		if err != nil {
			return nil, err
		}
		meta, err := c.index.Blob(d)
		if err != nil {
			unknown = append(unknown, d)
			continue
		}
		// A push pins what it links, though this replica may have held
		// it unpinned (mirrored) before: the record must say so, for the
		// replica evicting from the bucket asks the records.
		l := sharedLink{Size: meta.Size, MediaType: meta.MediaType, Pinned: pinned || meta.Pinned}
		g.Go(func() error { return c.putShared(ctx, key, l) })
	}
	return unknown, g.Wait()
}

// unshareEvictedLater deletes, in the background, the records of the
// links to d, which eviction (or gc) took from the store: they would
// vouch for content that is gone, and a rebuild would load them. Records
// saying pinned stay: eviction never takes pinned content, so such a
// record is a push of d that came after it.
func (c *Cache) unshareEvictedLater(d digest.Digest) {
	if c.rec == nil {
		return
	}
	prefix, err := sharedHoldersPrefix(d)
	if err != nil {
		return
	}
	pinned := func(ctx context.Context, key string) bool {
		var l sharedLink
		err := c.getShared(ctx, key, &l)
		return err != nil || l.Pinned // kept when in doubt
	}
	c.later("delete", prefix, func(ctx context.Context) error { return c.deleteUnder(ctx, prefix, pinned) })
}

// sharedLinked answers linked for a replica with records: local says
// whether the local index links them. The bucket is asked when the local
// index has no link (one found is learned) or when the content is pinned
// (a link gone from the bucket was deleted through some replica, and is
// dropped here too).
func (c *Cache) sharedLinked(repo Repo, d digest.Digest, local bool) bool {
	if !c.readThrough() {
		return local
	}
	key, err := sharedLinkKey(repo, d)
	if err != nil {
		return local
	}
	var l sharedLink
	err = c.getShared(c.life, key, &l)
	switch {
	case errors.Is(err, records.ErrNotFound):
		if local {
			c.dropLocalLink(repo, d)
		}
		return false
	case err != nil:
		c.sharedFailed("get", key, err)
		return local
	case local:
		return true
	}
	if err := c.learn(c.life, repo, d, l); err != nil {
		c.log.WithError(err).WithFields(map[string]any{"repo": repo.String(), "digest": d}).Warn("shared records: learning a link")
		return false
	}
	return true
}

// dropLocalLink forgets a link another replica deleted; the content stays
// until the index forgets it (its removal is the deleting replica's).
func (c *Cache) dropLocalLink(repo Repo, d digest.Digest) {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	if _, _, err := c.index.Unlink(repo.String(), d); err != nil {
		c.log.WithError(err).Warn("shared records: dropping a deleted link")
	}
	c.links.Remove(linkCacheKey(repo, d))
}

// sharedHeld reports whether any repository's link to d is left in the
// bucket, through any replica; when the bucket cannot say, it is held
// (content kept is safe, content removed from under a link is not).
func (c *Cache) sharedHeld(ctx context.Context, d digest.Digest) bool {
	prefix, err := sharedHoldersPrefix(d)
	if err != nil {
		return true
	}
	held, err := records.Any(ctx, c.rec.store, prefix)
	if err != nil {
		c.sharedFailed("list", prefix, err)
		return true
	}
	return held
}

// sharedPinned reports whether any repository's link to d in the bucket
// is pinned (pushed, mounted or imported through any replica); when the
// bucket cannot say, it is. The replica evicting from the bucket asks
// before it deletes: its own index may know d only unpinned (fetched
// here, or adopted from the bucket's listing at start).
func (c *Cache) sharedPinned(ctx context.Context, d digest.Digest) bool {
	pinned, _ := c.sharedPin(ctx, d)
	return pinned
}

// sharedPin is sharedPinned with the media type of the link that pins d
// (a push's link of a manifest says it; empty for a blob, or when the
// bucket cannot say): gc keeps what a pinned manifest references, and
// may know the manifest by size alone.
func (c *Cache) sharedPin(ctx context.Context, d digest.Digest) (pinned bool, mediaType string) {
	if c.rec == nil {
		return false, ""
	}
	l, found, err := c.findLink(ctx, d, true, func(l sharedLink) bool { return l.Pinned })
	if err != nil {
		return true, "" // kept when in doubt
	}
	return found, l.MediaType
}

// findLink is the first record of a link to d, through any repository,
// that match accepts. A record that cannot be read fails the search when
// strict (an answer must not be missed), and is passed over otherwise.
func (c *Cache) findLink(ctx context.Context, d digest.Digest, strict bool, match func(sharedLink) bool) (l sharedLink, found bool, err error) {
	prefix, err := sharedHoldersPrefix(d)
	if err != nil {
		return l, false, err
	}
	_, err = records.First(ctx, c.rec.store, prefix, func(key string) (bool, error) {
		var cand sharedLink
		switch err := c.getShared(ctx, key, &cand); {
		case errors.Is(err, records.ErrNotFound): // deleted since the listing
			return false, nil
		case err != nil && strict:
			return false, err
		case err == nil && match(cand):
			l, found = cand, true
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		c.sharedFailed("list", prefix, err)
		return sharedLink{}, false, err
	}
	return l, found, nil
}

// sharedStoredManifest is a manifest another replica stored: its bytes
// from the store, checked against d, and its media type from a link
// record of it (a pushed manifest's records say it; the body may not).
// The replica running the cluster's write-through reads what others
// took this way.
func (c *Cache) sharedStoredManifest(ctx context.Context, d digest.Digest) (*Manifest, error) {
	l, found, err := c.findLink(ctx, d, false, func(l sharedLink) bool { return l.MediaType != "" })
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("manifest %s: no link record names its media type: %w", d, ErrNotFound)
	}
	mediaType := l.MediaType
	body, err := c.readManifest(ctx, d)
	if err != nil {
		return nil, err
	}
	if err := oci.VerifyBytes(body, d); err != nil {
		return nil, fmt.Errorf("manifest %s: the stored bytes do not match: %w", d, err)
	}
	return &Manifest{Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}, Body: body}, nil
}

// learn makes a link the bucket holds this replica's own: the content's
// index record (a manifest's references read from its verified bytes),
// pinned as the record says, then the link.
func (c *Cache) learn(ctx context.Context, repo Repo, d digest.Digest, l sharedLink) error {
	meta, err := c.index.Blob(d)
	switch {
	case err == nil && (meta.MediaType != "" || l.MediaType == ""):
		if l.Pinned && !meta.Pinned {
			if err := c.pin(d, meta.Size); err != nil {
				return err
			}
		}
	default: // unknown, or a manifest known by size alone: recorded with its references
		var refs []digest.Digest
		if l.MediaType != "" {
			if refs, err = c.sharedManifestRefs(ctx, d, l.MediaType); err != nil {
				return err
			}
		}
		if err := c.recordContent(d, l.Size, l.MediaType, refs, l.Pinned); err != nil {
			return err
		}
	}
	return c.linkLocal(repo, d)
}

// readManifest reads manifest d's bytes from the store, at most
// oci.MaxManifestSize of them.
func (c *Cache) readManifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	f, err := c.store.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, oci.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	if len(body) > oci.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: over %d bytes: %w", d, oci.MaxManifestSize, ErrTooLarge)
	}
	return body, nil
}

// sharedManifestRefs reads manifest d from the store, checks its bytes,
// keeps it hot and returns its references.
func (c *Cache) sharedManifestRefs(ctx context.Context, d digest.Digest, mediaType string) ([]digest.Digest, error) {
	p, err := c.sharedManifest(ctx, d, mediaType)
	if err != nil {
		return nil, err
	}
	return p.Refs(), nil
}

// sharedManifest is sharedManifestRefs' manifest parsed: its child
// manifests (of an index) with their media types too.
func (c *Cache) sharedManifest(ctx context.Context, d digest.Digest, mediaType string) (oci.Parsed, error) {
	body, err := c.readManifest(ctx, d)
	if err != nil {
		return oci.Parsed{}, err
	}
	if !d.Algorithm().Available() || d.Algorithm().FromBytes(body) != d {
		return oci.Parsed{}, fmt.Errorf("manifest %s: the stored bytes do not match: %w", d, ErrDigestInvalid)
	}
	p, err := oci.ParseManifest(body)
	if err != nil {
		return oci.Parsed{}, fmt.Errorf("manifest %s: %w: %w", d, ErrManifestInvalid, err)
	}
	c.manifests.Add(d, &Manifest{Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}, Body: body})
	return p, nil
}
