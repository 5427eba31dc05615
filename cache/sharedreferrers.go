package cache

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache/records"
)

// Referrers and the catalog across replicas: a pushed manifest with a
// subject is recorded under its repository and subject (its descriptor,
// as the referrers API returns it), and every repository a manifest was
// pushed to has a record of its own, both written before the push is
// acknowledged. The referrers API reads through (one listing per
// answer: what the local index lacks is read and kept, what the bucket
// lost is forgotten), and the catalog adds the bucket's repositories (one
// listing of repos/) to those this replica saw.

// shareReferrer writes that desc, pushed to repo, refers to subject; the
// push fails without it.
func (c *Cache) shareReferrer(ctx context.Context, repo Repo, subject digest.Digest, desc ocispec.Descriptor) error {
	key, err := sharedReferrerKey(repo, subject, desc.Digest)
	if err != nil {
		return err
	}
	return c.putShared(ctx, key, desc)
}

// unshareReferrer deletes that record; the delete fails without it.
func (c *Cache) unshareReferrer(ctx context.Context, repo Repo, subject, d digest.Digest) error {
	key, err := sharedReferrerKey(repo, subject, d)
	if err != nil {
		return err
	}
	return c.deleteShared(ctx, key)
}

// shareRepository records repo for every replica's catalog.
func (c *Cache) shareRepository(ctx context.Context, repo Repo) error {
	key, err := sharedRepoKey(repo)
	if err != nil {
		return err
	}
	return c.putShared(ctx, key, struct{}{})
}

// referrers lists the referrers of subject in repo, in digest order: the
// bucket's with records (the local index learns and forgets to match),
// the local index's while the bucket cannot answer.
func (c *Cache) referrers(ctx context.Context, repo Repo, subject digest.Digest) ([]ocispec.Descriptor, error) {
	local, err := c.index.Referrers(repo.String(), subject)
	if err != nil || !c.readThrough() {
		return local, err
	}
	prefix, err := sharedReferrersPrefix(repo, subject)
	if err != nil {
		return []ocispec.Descriptor{}, nil // no subject anyone could refer to
	}
	lctx, cancel := c.readCtx(ctx)
	defer cancel()
	var listed []digest.Digest
	err = c.rec.store.List(lctx, prefix, func(key string) error {
		if k, ok := parseSharedKey(key); ok && k.kind == sharedRefersDir && k.repo == repo && k.subject == subject {
			listed = append(listed, k.digest)
		}
		return nil
	})
	if err != nil {
		c.sharedFailed("list", prefix, err)
		return local, nil
	}
	known := make(map[digest.Digest]ocispec.Descriptor, len(local))
	for _, d := range local {
		known[d.Digest] = d
	}
	out := make([]ocispec.Descriptor, 0, len(listed))
	for _, d := range listed {
		desc, ok := known[d]
		delete(known, d)
		if !ok {
			key, _ := sharedReferrerKey(repo, subject, d)
			if err := c.getShared(ctx, key, &desc); err != nil {
				if !errors.Is(err, records.ErrNotFound) { // else deleted since the listing
					c.sharedFailed("get", key, err)
				}
				continue
			}
			if desc.Digest != d { // not what the key says: not ours
				continue
			}
			// Pushed through another replica.
			if err := c.index.PutReferrer(repo.String(), subject, desc); err != nil {
				c.log.WithError(err).Warn("shared records: keeping a referrer")
			}
		}
		out = append(out, desc)
	}
	for d := range known { // deleted through another replica
		if err := c.index.DeleteReferrer(repo.String(), subject, d); err != nil {
			c.log.WithError(err).Warn("shared records: forgetting a deleted referrer")
		}
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}
