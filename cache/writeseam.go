package cache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/upload"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// The write path (package push) sits on the cache and changes it only
// through the operations in this file. Each is one operation of the
// cache, which takes its own locks and keeps its invariants: no lock and
// no index transaction spans two calls, and a caller that orders calls
// (a write-through delete queued before the local one) orders whole
// operations. Invariant 7 holds across the seam: content becomes part of
// a repository only as an upload into it (LinkUploaded), a mount the
// cache judges (Mount) or a manifest whose references the repository
// holds (PushManifest), and leaves it as one locked step (Unlink).

// OpenUploads opens the store's upload sessions (cache/upload) in
// data/uploads: their records live in the index, or with
// Options.SharedUploads in the shared store, and a finished session
// hands its verified file to Ingest, pinned. The caller owns the
// Sessions and closes them before the Cache.
func (c *Cache) OpenUploads(expiry time.Duration, limits upload.Limits) (*upload.Sessions, error) {
	return upload.Open(upload.Options{
		Dir:     filepath.Join(c.opts.Dir, "uploads"),
		Records: c.index,
		Ingest:  c,
		Expiry:  expiry,
		Limits:  limits,
		Shared:  c.opts.SharedUploads,
		Metrics: c.opts.Metrics,
		Logger:  c.log,
		Now:     c.opts.Now,
	})
}

// LinkUploaded records that repo holds d, which an upload session opened
// in repo has just verified and ingested. Content named by digest alone
// goes through Mount, which judges whether repo may have it.
func (c *Cache) LinkUploaded(ctx context.Context, repo Repo, d digest.Digest) error {
	return c.linkPushed(ctx, repo, nil, d)
}

// Mount makes a stored blob part of repo without a byte sent (a
// cross-repository mount), pinned like anything pushed. A mount must not
// open content by digest alone, so the blob must be one from holds (the
// caller has checked that the client may read from), or, with no from,
// one repo's upstream vouches for or — when anyPinned says no access
// rules separate repositories — one pushed or imported here (never a
// private upstream's). It reports false when it cannot mount: the client
// then uploads the blob.
func (c *Cache) Mount(ctx context.Context, repo Repo, from *Repo, anyPinned bool, d digest.Digest) (bool, error) {
	size, err := c.statDurable(ctx, d)
	if err != nil {
		return false, nil
	}
	switch {
	case from != nil && c.linked(*from, d):
	case from == nil && anyPinned && c.Pinned(d):
	case from == nil && c.mayServe(ctx, repo, d, false) == nil:
	default:
		return false, nil
	}
	// Pinned first, so that the shared link says so.
	if err := c.pin(d, size); err != nil {
		return false, err
	}
	if err := c.linkPushed(ctx, repo, nil, d); errors.Is(err, ErrEvicted) {
		return false, nil // evicted as it was mounted: the client uploads it
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// Holds reports whether repo is linked to d: whether a read, a manifest's
// reference or a delete in repo may name d without asking the upstream.
func (c *Cache) Holds(repo Repo, d digest.Digest) bool { return c.linked(repo, d) }

// HeldSize is the size of stored content d when repo holds it: what a
// pushed manifest's reference is checked against.
func (c *Cache) HeldSize(repo Repo, d digest.Digest) (int64, bool) {
	if !c.linked(repo, d) {
		return 0, false
	}
	size, err := c.store.Stat(c.life, d)
	return size, err == nil
}

// Pinned reports whether d is stored and pinned (pushed or imported here).
func (c *Cache) Pinned(d digest.Digest) bool {
	meta, err := c.index.Blob(d)
	return err == nil && meta.Pinned
}

// PushManifest stores m, a manifest a client pushed to repo, which the
// caller has validated as p (its references held, tags valid; an
// import's p names only the blobs it checked): pinned,
// linked to repo with everything it references, listed among the
// referrers of its subject in repo, repo recorded for the catalog, and
// each of tags pointed at it as a pushed tag (the site's own: found
// before the upstream is asked, never revalidated). ctx, the request's,
// bounds the wait for an eviction of its content (linkPushed).
func (c *Cache) PushManifest(ctx context.Context, repo Repo, m *Manifest, p oci.Pushed, tags []string) error {
	desc := m.Descriptor
	refs, err := c.putManifest(m, true)
	if err != nil {
		return err
	}
	// The caller checked that repo holds p's references but foreign
	// layers: each must still be stored as it is linked.
	vouched := map[digest.Digest]bool{desc.Digest: true}
	for _, group := range [][]ocispec.Descriptor{p.Blobs, p.Manifests} {
		for _, r := range group {
			if !oci.Foreign(r) {
				vouched[r.Digest] = true
			}
		}
	}
	optional := func(d digest.Digest) bool { return !vouched[d] }
	if err := c.linkPushed(ctx, repo, optional, append([]digest.Digest{desc.Digest}, refs...)...); err != nil {
		return err
	}
	c.manifests.Add(desc.Digest, m)
	if p.Subject != nil {
		rd := desc
		rd.ArtifactType, rd.Annotations = p.ArtifactType, p.Annotations
		if c.rec != nil {
			if err := c.shareReferrer(c.life, repo, p.Subject.Digest, rd); err != nil {
				return err
			}
		}
		if err := c.index.PutReferrer(repo.String(), p.Subject.Digest, rd); err != nil {
			return err
		}
	}
	// Whether to announce is decided before repo's record is written:
	// this replica's own listing may find that record before the tags are
	// written, and the peers would then not be told.
	announce := len(tags) > 0 && c.rec != nil && !c.rec.repos.has(repo)
	if c.rec != nil {
		if err := c.shareRepository(c.life, repo); err != nil {
			return err
		}
	}
	if err := c.index.PutRepository(repo.String()); err != nil {
		return err
	}
	for _, t := range tags {
		rec := index.TagRecord{Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size, Checked: c.opts.Now()}
		if c.rec != nil {
			if err := c.sharePushedTag(c.life, repo, t, rec); err != nil {
				return err
			}
		}
		if err := c.index.PutLocalTag(repo.String(), t, rec); err != nil {
			return err
		}
	}
	if len(tags) > 0 {
		c.pushedInto(c.life, repo, announce)
	}
	return nil
}

// Referrers lists the manifests pushed to repo whose subject is d.
func (c *Cache) Referrers(ctx context.Context, repo Repo, d digest.Digest) ([]ocispec.Descriptor, error) {
	return c.referrers(ctx, repo, d)
}

// PushedTag is the digest tag was pushed to repo as; false when it was
// not (a mirrored tag is the upstream's, and not one).
func (c *Cache) PushedTag(repo Repo, tag string) (digest.Digest, bool) {
	rec, err := c.pushedTag(c.life, repo, tag)
	return rec.Digest, err == nil
}

// PushedTags lists the tags pushed to repo, sorted.
func (c *Cache) PushedTags(repo Repo) ([]string, error) { return c.pushedTags(c.life, repo) }

// DeletePushedTag forgets tag in repo: the pushed tag, and what the
// upstream once said of the same name, which is the upstream's to say
// again.
func (c *Cache) DeletePushedTag(repo Repo, tag string) error {
	if c.rec != nil {
		if err := c.unsharePushedTag(c.life, repo, tag); err != nil {
			return err
		}
	}
	c.forgetTag(repo, tag)
	return c.index.DeleteLocalTag(repo.String(), tag)
}

// UnlinkManifest is Unlink for a manifest: repo's referrers of its
// subject lose it first.
func (c *Cache) UnlinkManifest(repo Repo, m *Manifest) error {
	d := m.Descriptor.Digest
	if p, err := oci.ParseManifest(m.Body); err == nil && p.Subject != nil {
		if c.rec != nil {
			if err := c.unshareReferrer(c.life, repo, p.Subject.Digest, d); err != nil {
				return err
			}
		}
		if err := c.index.DeleteReferrer(repo.String(), p.Subject.Digest, d); err != nil {
			return err
		}
	}
	return c.Unlink(repo, d)
}

// Unlink removes repo's link to d and, when no repository links d any
// more, d itself through the one removal path, ordered against eviction
// and fills by the store's content lock. A client reading d right now
// keeps its open file. A link already gone (a request that came first
// deleted it) is ErrNotFound.
func (c *Cache) Unlink(repo Repo, d digest.Digest) error {
	if c.rec == nil {
		c.contentMu.Lock()
		defer c.contentMu.Unlock()
		if held, err := c.unlinkLocked(repo, d); err != nil || held {
			return err
		}
		meta, err := c.index.Blob(d)
		if errors.Is(err, index.ErrNotFound) {
			return c.store.Delete(c.life, d) // a file the index never heard of
		}
		if err != nil {
			return err
		}
		return c.removeLocked(d, meta.Size)
	}
	// The bucket's work is bounded, and done outside the content lock,
	// which every fill's commit takes: only the index steps are under
	// it, and the delete, bounded by the evicting record's deadline.
	ctx, cancel := context.WithTimeout(c.life, c.evictingFor)
	defer cancel()
	key, err := sharedLinkKey(repo, d)
	if err != nil {
		return err
	}
	if err := c.deleteShared(ctx, key); err != nil {
		return err
	}
	c.contentMu.Lock()
	held, err := c.unlinkLocked(repo, d)
	c.contentMu.Unlock()
	if err != nil || held {
		return err
	}
	// Through another replica too: asked under the handshake with pushes
	// that eviction uses (sharedevicting.go).
	hold, ok := c.markUnlinked(ctx, d)
	if !ok {
		return nil
	}
	_, err = c.removeHeld(ctx, d, hold, true)
	return err
}

// unlinkLocked removes repo's link to d from the index and reports
// whether another repository holds d. c.contentMu must be held.
func (c *Cache) unlinkLocked(repo Repo, d digest.Digest) (held bool, err error) {
	had, held, err := c.index.Unlink(repo.String(), d)
	c.links.Remove(linkCacheKey(repo, d))
	if err != nil {
		c.opts.Metrics.StoreError("index")
		return false, err
	}
	if !had {
		return false, fmt.Errorf("%s@%s: %w", repo, d, ErrNotFound)
	}
	return held, nil
}

// Origin is the upstream repo mirrors (offline, the stand-in that answers
// from the store), for the optional capabilities the write path asks of
// it: the registry itself (Directer), never a peer, whose HeadBlob would
// answer for the cluster's cache and not for the registry.
func (c *Cache) Origin(repo Repo) (Origin, error) {
	return c.origin(DirectOrigin(context.Background()), repo)
}

// UpstreamServesTag reports whether repo's upstream serves tag, asking it
// with a HEAD (which Docker Hub does not count as a pull). Offline, the
// answer is whether this cache has mirrored the tag; online, when the
// upstream cannot answer, a mirrored tag is served and anything else is
// the upstream's failure, returned as it came. No upstream for repo
// serves nothing.
func (c *Cache) UpstreamServesTag(ctx context.Context, repo Repo, tag string) (bool, error) {
	o, err := c.origin(ctx, repo)
	if err != nil {
		return false, nil
	}
	recs, err := c.index.TagRecords(repo.String(), tag)
	if err != nil {
		return false, fmt.Errorf("tag records of %s:%s: %w", repo, tag, err)
	}
	if c.opts.Offline {
		return len(recs) > 0, nil
	}
	_, err = o.HeadManifest(ctx, repo.Path, tag, oci.ServedManifests)
	switch {
	case err == nil, errors.Is(err, upstream.ErrNoDigest):
		return true, nil
	case errors.Is(err, upstream.ErrNotFound), errors.Is(err, upstream.ErrUnauthorized), errors.Is(err, upstream.ErrDenied):
		// Not served to wharf: Docker Hub answers 401 for names it does
		// not hold, so "not yours" is "not there" as far as pulls go.
		return false, nil
	case len(recs) > 0:
		return true, nil
	}
	return false, err
}

// Unreachable reports whether err, from one of the Cache's reads, means
// the upstream could not answer, as opposed to answering no.
func Unreachable(err error) bool { return unreachable(err) }

// Queue is the durable write-through queue (package writethrough works
// it), kept in the index so that a restart loses no job.
func (c *Cache) Queue() index.Queue { return c.index.Queue() }
