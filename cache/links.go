package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// A repository serves only content it is linked to: what its upstream
// served under its name (linked once the bytes are verified: fillvouch.go),
// or what was pushed, mounted or imported into it (a pushed manifest links
// its references; a fetched one those stored from an upstream: a digest
// named is not bytes sent). Content is stored once by digest,
// so without links anyone who knows a digest could read it through any
// repository name — a private upstream repository's layers through a
// public one, or past wharf's per-prefix access rules.
//
// A hit for a repository without a link is allowed after asking that
// repository's upstream (a HEAD, which Docker Hub does not count as a
// pull) and is then linked; pushed content only once the upstream sends
// its bytes (possession.go). With no upstream to ask, it is a miss.

func linkCacheKey(repo Repo, d digest.Digest) string { return linkKey(repo.String(), d) }

// linkKey is linkCacheKey for a repository named as the index names it.
func linkKey(repo string, d digest.Digest) string { return repo + "\x00" + d.String() }

// Content leaves the disk when no repository links it any more: a delete
// unlinks one repository (Unlink), eviction takes the content and
// every link to it (removeLocked).

// link records that repo may serve ds, and shares the links in the
// background: its upstream vouched for them, and would again.
func (c *Cache) link(repo Repo, ds ...digest.Digest) error {
	if err := c.linkLocal(repo, ds...); err != nil {
		return err
	}
	c.shareLinksLater(repo, ds...)
	return nil
}

// linkPushed records that repo may serve ds, pushed content: in the
// shared records first, so that a push is acknowledged only once every
// replica would serve it, and the bucket still holds ds after its links
// are there (ErrEvicted otherwise). The caller checked that ds are
// stored, except those optional says may be absent (a manifest's foreign
// layers, an import's missing children; nil: none): one the index no
// longer knows was removed since, by eviction or a delete, and is
// ErrEvicted too, for its link would vouch for nothing.
func (c *Cache) linkPushed(ctx context.Context, repo Repo, optional func(digest.Digest) bool, ds ...digest.Digest) error {
	var unknown []digest.Digest
	if c.rec != nil {
		var err error
		if unknown, err = c.shareKnownLinks(ctx, repo, true, ds); err != nil {
			return err
		}
	} else {
		unknown = slices.DeleteFunc(slices.Clone(ds), c.knows)
	}
	var gone []digest.Digest
	for _, d := range unknown {
		if optional == nil || !optional(d) {
			gone = append(gone, d)
		}
	}
	if len(gone) > 0 {
		if c.rec != nil {
			c.opts.Metrics.EvictHandshake("refused")
		}
		return fmt.Errorf("%s: %v: removed as it was pushed: %w", repo, gone, ErrEvicted)
	}
	if c.rec != nil {
		known := slices.DeleteFunc(slices.Clone(ds), func(d digest.Digest) bool { return slices.Contains(unknown, d) })
		if err := c.confirmPushed(ctx, repo, known); err != nil {
			return err // the handshake with eviction (sharedevicting.go)
		}
	}
	return c.linkLocal(repo, ds...)
}

// linkLocal records that repo may serve ds, in this replica's index.
func (c *Cache) linkLocal(repo Repo, ds ...digest.Digest) error {
	if err := c.index.PutLinks(repo.String(), ds...); err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	for _, d := range ds {
		c.links.Add(linkCacheKey(repo, d), struct{}{})
	}
	return nil
}

func (c *Cache) linked(repo Repo, d digest.Digest) bool {
	ok := c.linkedHere(repo, d)
	if c.rec == nil || ok && !c.Pinned(d) {
		return ok
	}
	return c.sharedLinked(repo, d, ok)
}

// linkedHere is linked as this replica's index knows it.
func (c *Cache) linkedHere(repo Repo, d digest.Digest) bool {
	k := linkCacheKey(repo, d)
	if _, ok := c.links.Get(k); ok {
		return true
	}
	ok, err := c.index.HasLink(repo.String(), d)
	if err != nil {
		c.log.WithError(err).Warn("reading a link")
		return false
	}
	if ok {
		c.links.Add(k, struct{}{})
	}
	return ok
}

// mayServe checks that repo may serve stored content d, asking repo's
// upstream when no link says so. manifest tells which kind to ask for.
func (c *Cache) mayServe(ctx context.Context, repo Repo, d digest.Digest, manifest bool) error {
	if c.linked(repo, d) {
		return nil
	}
	o, err := c.origin(ctx, repo)
	if err != nil {
		return fmt.Errorf("%s is not known to %s: %w", d, repo, ErrNotFound)
	}
	switch {
	case c.Pinned(d):
		// Pushed content (another team's, maybe): a HEAD's 200 is a claim
		// any upstream that knows the digest can make. Only the bytes,
		// which match d, show the upstream holds it and could serve it
		// to repo's clients itself. The check links repo (possession.go).
		if err := c.upstreamSends(ctx, o, repo, d, manifest); err != nil {
			return notShown(repo, d, err)
		}
		return nil
	case manifest:
		_, err = o.HeadManifest(ctx, repo.Path, d.String(), nil)
		if errors.Is(err, upstream.ErrNoDigest) {
			err = nil // the upstream answered for this digest without echoing it
		}
	default:
		_, err = o.HeadBlob(ctx, repo.Path, d)
	}
	if err != nil {
		return notShown(repo, d, err)
	}
	return c.link(repo, d)
}

// notShown is the refusal when repo's upstream did not show it holds d.
// A not-found or bytes that do not match are a not-found; any other
// failure (429, 5xx, a timeout) is the upstream's, wrapped, as the miss
// of content not stored would answer it: the status a client sees must
// not tell whether d is stored.
func notShown(repo Repo, d digest.Digest, err error) error {
	if errors.Is(err, upstream.ErrNotFound) || errors.Is(err, ErrNotFound) || mismatch(err) {
		return fmt.Errorf("%s is not known to %s: %w: %v", d, repo, ErrNotFound, err)
	}
	return fmt.Errorf("%s is not known to %s: %w", d, repo, err)
}

// mismatch reports whether err says the bytes were not d's.
func mismatch(err error) bool {
	return errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, oci.ErrSizeMismatch) ||
		errors.Is(err, upstream.ErrDigestMismatch) || errors.Is(err, errNotSent)
}
