package cache

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
)

// pushedTag is the record of tag pushed to repo, or index.ErrNotFound.
// With records it is the bucket's (read through, so a push or delete
// through any replica is seen at once), kept in the local index, which
// answers while the bucket cannot. A pull asks readPushedOnPull first.
func (c *Cache) pushedTag(ctx context.Context, repo Repo, tag string) (index.TagRecord, error) {
	if !c.readThrough() {
		return c.index.LocalTag(repo.String(), tag)
	}
	key, err := sharedTagKey(repo, tag)
	if err != nil {
		return index.TagRecord{}, index.ErrNotFound // no tag anyone could push
	}
	var t sharedTag
	err = c.getShared(ctx, key, &t)
	switch {
	case errors.Is(err, records.ErrNotFound):
		if _, err := c.index.LocalTag(repo.String(), tag); err == nil {
			if err := c.index.DeleteLocalTag(repo.String(), tag); err != nil { // deleted through another replica
				c.log.WithError(err).Warn("shared records: forgetting a deleted tag")
			}
		}
		return index.TagRecord{}, index.ErrNotFound
	case err != nil:
		c.sharedFailed("get", key, err)
		return c.index.LocalTag(repo.String(), tag)
	}
	rec := index.TagRecord{Digest: t.Digest, MediaType: t.MediaType, Size: t.Size, Checked: t.Pushed}
	c.rec.repos.add(repo) // read through from now on, whatever the listings said
	if old, err := c.index.LocalTag(repo.String(), tag); err != nil || old.Digest != rec.Digest {
		// Pushed or moved through another replica: the manifest (pinned,
		// linked to repo by that push) and the tag become this one's.
		if err := c.learn(ctx, repo, t.Digest, sharedLink{Size: t.Size, MediaType: t.MediaType, Pinned: true}); err != nil {
			c.log.WithError(err).WithFields(map[string]any{"repo": repo.String(), "tag": tag}).Warn("shared records: learning a pushed tag")
		}
		if err := c.index.PutLocalTag(repo.String(), tag, rec); err != nil {
			c.log.WithError(err).Warn("shared records: keeping a pushed tag")
		}
	}
	return rec, nil
}

// pushedTags lists the tags pushed to repo, sorted: the bucket's with
// records, the local index's while the bucket cannot answer.
func (c *Cache) pushedTags(ctx context.Context, repo Repo) ([]string, error) {
	if !c.readThrough() {
		return c.index.LocalTags(repo.String())
	}
	prefix, err := sharedTagsPrefix(repo)
	if err != nil {
		return nil, nil
	}
	ctx, cancel := c.readCtx(ctx)
	defer cancel()
	var tags []string
	err = c.rec.store.List(ctx, prefix, func(key string) error {
		if t, err := url.PathUnescape(strings.TrimPrefix(key, prefix)); err == nil && !strings.Contains(t, "/") {
			tags = append(tags, t)
		}
		return nil
	})
	if err != nil {
		c.sharedFailed("list", prefix, err)
		return c.index.LocalTags(repo.String())
	}
	slices.Sort(tags)
	return tags, nil
}

// sharePushedTag writes a pushed tag to the bucket; the push fails
// without it.
func (c *Cache) sharePushedTag(ctx context.Context, repo Repo, tag string, r index.TagRecord) error {
	key, err := sharedTagKey(repo, tag)
	if err != nil {
		return err
	}
	return c.putShared(ctx, key, sharedTag{Digest: r.Digest, MediaType: r.MediaType, Size: r.Size, Pushed: r.Checked})
}

// unsharePushedTag deletes a pushed tag from the bucket; the delete
// fails without it.
func (c *Cache) unsharePushedTag(ctx context.Context, repo Repo, tag string) error {
	key, err := sharedTagKey(repo, tag)
	if err != nil {
		return err
	}
	return c.deleteShared(ctx, key)
}

// shareMirroredLater writes what the upstream said repo:tag is for one
// Accept set, with its stamp, in the background.
func (c *Cache) shareMirroredLater(repo Repo, tag, accept string, r index.TagRecord) {
	if c.rec == nil {
		return
	}
	key, err := sharedMirrorKey(repo, tag, accept)
	if err != nil {
		return
	}
	m := sharedMirror{Accept: accept, Digest: r.Digest, MediaType: r.MediaType, Size: r.Size, Checked: r.Checked}
	c.later("put", key, func(ctx context.Context) error { return c.putShared(ctx, key, m) })
	c.shareMirroredRepoLater(repo)
}

// forgetMirroredLater deletes every record of repo:tag's mirrored tag
// (the upstream no longer has it) in the background.
func (c *Cache) forgetMirroredLater(repo Repo, tag string) {
	if c.rec == nil {
		return
	}
	prefix, err := sharedMirrorPrefix(repo, tag)
	if err != nil {
		return
	}
	c.later("delete", prefix, func(ctx context.Context) error { return c.deleteUnder(ctx, prefix, nil) })
}

// sharedStaleTag is a manifest another replica mirrored as repo:tag, for
// an Accept set accept allows (the most recently checked wins), to serve
// stale when the upstream cannot answer and this replica never saw the
// tag. It becomes this replica's cached tag, with its stamp, which it
// returns.
func (c *Cache) sharedStaleTag(ctx context.Context, repo Repo, tag string, accept []string) (*Manifest, time.Time, bool) {
	if !c.readThrough() {
		return nil, time.Time{}, false
	}
	prefix, err := sharedMirrorPrefix(repo, tag)
	if err != nil {
		return nil, time.Time{}, false
	}
	lctx, cancel := c.readCtx(ctx)
	defer cancel()
	var keys []string
	if err := c.rec.store.List(lctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		c.sharedFailed("list", prefix, err)
		return nil, time.Time{}, false
	}
	allowed := strings.Split(c.acceptKey(accept), ",")
	var best *sharedMirror
	for _, k := range keys {
		var m sharedMirror
		if err := c.getShared(ctx, k, &m); err != nil {
			continue
		}
		if allowed[0] != "" && !slices.Contains(allowed, m.MediaType) {
			continue
		}
		if best == nil || m.Checked.After(best.Checked) {
			best = &m
		}
	}
	if best == nil {
		return nil, time.Time{}, false
	}
	// The upstream vouched for the digest under repo's name.
	if err := c.learn(ctx, repo, best.Digest, sharedLink{Size: best.Size, MediaType: best.MediaType}); err != nil {
		return nil, time.Time{}, false
	}
	m, err := c.storedManifest(best.Digest)
	if err != nil {
		return nil, time.Time{}, false
	}
	rec := index.TagRecord{Digest: best.Digest, MediaType: best.MediaType, Size: best.Size, Checked: best.Checked}
	c.tags.Add(tagCacheKey(repo, tag, best.Accept), rec)
	if err := c.index.PutTag(repo.String(), tag, best.Accept, rec); err != nil {
		c.log.WithError(err).Warn("shared records: keeping a mirrored tag")
	}
	return m, best.Checked, true
}
