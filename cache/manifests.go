package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// Manifest is a manifest's exact bytes and their descriptor.
type Manifest struct {
	Descriptor ocispec.Descriptor
	Body       []byte
	// Fetched is true when this answer needed a GET from the upstream.
	Fetched bool
	// Checked, for a mirrored tag, is when its record was last checked
	// against the upstream (a record past the TTL served stale included);
	// zero otherwise. A peer relays it as Age (package peer).
	Checked time.Time
}

// fetched returns a copy of m marked as fetched from the upstream (the
// cached value itself is shared and never changed).
func (m *Manifest) fetched() *Manifest {
	c := *m
	c.Fetched = true
	return &c
}

// checkedAt returns a copy of m stamped with the time its tag was checked.
func (m *Manifest) checkedAt(t time.Time) *Manifest {
	c := *m
	c.Checked = t
	return &c
}

// Manifest returns repo's manifest for ref (a tag or a digest) as the
// upstream would answer a request with these Accept values.
func (c *Cache) Manifest(ctx context.Context, repo Repo, ref string, accept []string) (m *Manifest, err error) {
	defer func() {
		if err == nil {
			c.access.pull(repo.String(), !m.Fetched)
		}
	}()
	if d, err := digest.Parse(ref); err == nil {
		return c.manifestByDigest(ctx, repo, d, accept)
	}
	return c.manifestByTag(ctx, repo, ref, accept)
}

func (c *Cache) manifestByDigest(ctx context.Context, repo Repo, d digest.Digest, accept []string) (*Manifest, error) {
	m, err := c.storedManifest(d)
	if errors.Is(err, index.ErrNotFound) && c.rec != nil && c.linked(repo, d) {
		// Pushed to repo through another replica (a referrer listed, a
		// pull by digest): its link record was just learned.
		m, err = c.storedManifest(d)
	}
	if err == nil {
		if err := c.mayServe(ctx, repo, d, true); err != nil {
			return nil, err
		}
		c.opts.Metrics.Hit("manifest")
		c.access.touch(d, c.opts.Now())
		return m, nil
	}
	if down := c.storeDown(err); down != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w", repo, d, down)
	}
	c.opts.Metrics.Miss("manifest")
	return detached(ctx, c, flightPrefix(ctx)+"m\x00"+d.String(), func(ctx context.Context) (*Manifest, error) {
		return c.fetchManifest(ctx, repo, d.String(), accept)
	})
}

func (c *Cache) manifestByTag(ctx context.Context, repo Repo, tag string, accept []string) (*Manifest, error) {
	key := c.acceptKey(accept)
	if c.readPushedOnPull(repo, tag, key) {
		if rec, err := c.pushedTag(ctx, repo, tag); err == nil {
			// Pushed here: the site's own tag wins and is never revalidated.
			if m, err := c.storedManifest(rec.Digest); err == nil {
				c.opts.Metrics.Hit("tag")
				c.access.touch(rec.Digest, c.opts.Now())
				return m, nil
			}
		}
	}
	rec, haveRec := c.tagRecord(repo, tag, key)
	var cached *Manifest
	if haveRec {
		m, err := c.storedManifest(rec.Digest)
		if err == nil {
			cached = m
			if c.opts.Now().Sub(rec.Checked) < c.tagTTL(repo) {
				c.opts.Metrics.Hit("tag")
				c.access.touch(m.Descriptor.Digest, c.opts.Now())
				return m.checkedAt(rec.Checked), nil
			}
		}
	}
	if cached == nil {
		// No record for this Accept set: another set's, if this client
		// accepts its media type, stands in as the cached copy. It is
		// revalidated like one (a HEAD with this client's Accept set), and
		// served if the upstream cannot answer in time.
		cached, _ = c.storedTag(repo.String(), tag, accept)
	}
	c.opts.Metrics.Miss("tag")
	flightKey := flightPrefix(ctx) + "t\x00" + repo.String() + "\x00" + tag + "\x00" + key
	refresh := func(ctx context.Context) (*Manifest, error) {
		return c.refreshTag(ctx, repo, tag, key, accept, cached)
	}
	if cached == nil {
		m, err := detached(ctx, c, flightKey, refresh)
		if err != nil && unreachable(err) {
			if sm, checked, ok := c.sharedStaleTag(ctx, repo, tag, accept); ok {
				c.opts.Metrics.Stale("tag")
				logCtx(c.log, ctx).WithError(err).WithFields(map[string]any{"repo": repo.String(), "tag": tag}).Warn("upstream unreachable; serving the tag another replica cached")
				// As expired at the latest: a peer must not trust it for a new TTL.
				if expired := c.opts.Now().Add(-c.tagTTL(repo)); expired.Before(checked) {
					checked = expired
				}
				return sm.checkedAt(checked), nil
			}
		}
		return m, err
	}
	m, err := c.revalidate(ctx, flightKey, refresh)
	if err != nil && (unreachable(err) || errors.Is(err, errOverBudget)) {
		c.opts.Metrics.Stale("tag")
		l := logCtx(c.log, ctx).WithError(err).WithFields(map[string]any{"repo": repo.String(), "tag": tag})
		if errors.Is(err, upstream.ErrDown) || errors.Is(err, errOverBudget) {
			// Expected while it lasts: the transition was logged once.
			l.Debug("serving cached tag without waiting for the upstream")
		} else {
			l.Warn("upstream unreachable; serving cached tag")
		}
		// Checked as of its record, or as expired when it stands in for
		// another Accept set's: a peer must not trust it for a new TTL.
		checked := c.opts.Now().Add(-c.tagTTL(repo))
		if haveRec && rec.Checked.Before(checked) {
			checked = rec.Checked
		}
		return cached.checkedAt(checked), nil
	}
	return m, err
}

// storedTag is the stored manifest a record of repo:tag holds for any
// Accept set, if its media type is one accept allows (any, for a client
// that names none); the most recently checked record wins. Offline it is
// the answer; online it is the cached copy for an Accept set with no
// record of its own: docker, containerd and crane each send their own
// set, so a tag one kind of client pulled would otherwise be a miss for
// the others, and fail exactly when the upstream is down.
func (c *Cache) storedTag(repo, tag string, accept []string) (*Manifest, bool) {
	recs, err := c.index.TagRecords(repo, tag)
	if err != nil {
		return nil, false
	}
	allowed := strings.Split(c.acceptKey(accept), ",")
	var best *Manifest
	var checked time.Time
	for _, r := range recs {
		m, err := c.storedManifest(r.Digest)
		if err != nil || (allowed[0] != "" && !slices.Contains(allowed, m.Descriptor.MediaType)) {
			continue
		}
		if best == nil || r.Checked.After(checked) {
			best, checked = m, r.Checked
		}
	}
	return best, best != nil
}

// refreshTag asks the upstream what tag is now. With a cached manifest it
// HEADs first (a HEAD does not count against Docker Hub's pull limit) and
// GETs only when the digest changed.
func (c *Cache) refreshTag(ctx context.Context, repo Repo, tag, key string, accept []string, cached *Manifest) (*Manifest, error) {
	o, err := c.origin(ctx, repo)
	if err != nil {
		return nil, err
	}
	if cached != nil {
		desc, checked, err := headChecked(ctx, o, repo.Path, tag, accept)
		switch {
		case err == nil && desc.Digest == cached.Descriptor.Digest:
			checked = c.checkedTime(checked)
			return cached.checkedAt(checked), c.putTag(repo, tag, key, cached.Descriptor, checked)
		case errors.Is(err, upstream.ErrNotFound):
			c.forgetTag(repo, tag)
			return nil, fmt.Errorf("manifest %s:%s: %w: %w", repo, tag, ErrNotFound, err)
		case err != nil && !errors.Is(err, upstream.ErrNoDigest):
			return nil, err
		}
	}
	m, fromPeer, err := c.fetchManifestFrom(ctx, repo, tag, accept, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			c.forgetTag(repo, tag)
		}
		return nil, err
	}
	m.Checked = c.checkedTime(m.Checked)
	if fromPeer { // kept with the manifest; the replica that answered shared it
		return m, nil
	}
	return m, c.putTag(repo, tag, key, m.Descriptor, m.Checked)
}

// headChecked is o's HeadManifest, with the time the answer was checked
// against the registry when o relays one (CheckedHeader); zero is now.
func headChecked(ctx context.Context, o Origin, repo, ref string, accept []string) (ocispec.Descriptor, time.Time, error) {
	if h, ok := o.(CheckedHeader); ok {
		return h.HeadManifestChecked(ctx, repo, ref, accept)
	}
	desc, err := o.HeadManifest(ctx, repo, ref, accept)
	return desc, time.Time{}, err
}

// checkedTime is when an origin's answer was checked: t, or now when t is
// zero or in the future (a peer's clock or Age is not trusted past now).
func (c *Cache) checkedTime(t time.Time) time.Time {
	if now := c.opts.Now(); t.IsZero() || t.After(now) {
		return now
	}
	return t
}

// fetchManifest GETs a manifest from the upstream and stores it. The
// upstream client has already checked the bytes against the digest and the
// size limit; checkFetched checks that they are a manifest. Only a GET's
// body is ever stored: a HEAD (tag revalidation) only confirms a digest
// already held.
func (c *Cache) fetchManifest(ctx context.Context, repo Repo, ref string, accept []string) (*Manifest, error) {
	m, _, err := c.fetchManifestFrom(ctx, repo, ref, accept, "")
	return m, err
}

// fetchManifestFrom is fetchManifest, and says whether another replica
// answered (upstream.Manifest.Shared): it shared its records already.
// With tagKey, ref is a tag asked for with that Accept set: a replica's
// answer is kept with the tag's record (keepPeerManifest).
func (c *Cache) fetchManifestFrom(ctx context.Context, repo Repo, ref string, accept []string, tagKey string) (*Manifest, bool, error) {
	if err := c.storeAnswering(); err != nil {
		return nil, false, fmt.Errorf("manifest %s@%s: %w", repo, ref, err) // what the upstream sent could not be kept
	}
	o, err := c.origin(ctx, repo)
	if err != nil {
		return nil, false, err
	}
	um, err := o.GetManifest(ctx, repo.Path, ref, accept)
	if errors.Is(err, upstream.ErrNotFound) {
		return nil, false, fmt.Errorf("manifest %s@%s: %w: %w", repo, ref, ErrNotFound, err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
	}
	m := &Manifest{Descriptor: um.Descriptor, Body: um.Body}
	p, err := c.checkFetched(o.Name(), m)
	if err != nil {
		return nil, false, fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
	}
	checked := um.Checked
	if um.Shared {
		var t *peerTag
		if tagKey != "" {
			checked = c.checkedTime(checked)
			t = &peerTag{tag: ref, accept: tagKey, checked: checked}
		}
		err = c.keepPeerManifest(repo, m, p, t)
	} else {
		err = c.storeManifest(repo, m, false)
	}
	if err != nil {
		return nil, false, err
	}
	m = m.fetched()
	m.Checked = checked
	return m, um.Shared, nil
}

// peerTag is the record of the tag a peer's manifest answered.
type peerTag struct {
	tag, accept string
	checked     time.Time
}

// keepPeerManifest is storeManifest for mirrored manifest bytes another
// replica served from the store the replicas share (p, as checkFetched
// parsed them), with the record of the tag t they answer, if any: that replica stored them there, linked
// repo to them and shared the link, so this one records them in its index
// and keeps them hot with no request to the bucket, and no local write (a
// fsync) on the client's path either: a read past the hot set opens the
// shared copy, which the tiered store then copies locally. The references
// are linked and shared as storeManifest's are (linkableRefs). The index writes are one batch the client does not
// wait for (index.Unwaited): a crash may lose them, and the next pull
// asks the peer again.
func (c *Cache) keepPeerManifest(repo Repo, m *Manifest, p oci.Parsed, t *peerTag) error {
	if _, ok := c.store.(sharedStatter); !ok {
		if err := c.storeManifest(repo, m, false); err != nil || t == nil {
			return err
		}
		return c.putTagLocal(repo, t.tag, t.accept, m.Descriptor, t.checked)
	}
	d := m.Descriptor.Digest
	if err := oci.VerifyBytes(m.Body, d); err != nil {
		return fmt.Errorf("store manifest %s: %w", d, BadContent(err))
	}
	refs := p.Refs()
	b := c.index.Unwaited(c.unwaitedFailed)
	defer b.Discard()
	linked := c.linkableRefs(refs)
	ds := append([]digest.Digest{d}, linked...)
	var rec index.TagRecord
	err := b.PutLinks(repo.String(), ds...)
	if t != nil && err == nil {
		rec = tagRecordOf(m.Descriptor, t.checked)
		err = b.PutTag(repo.String(), t.tag, t.accept, rec)
	}
	if err != nil {
		c.opts.Metrics.StoreError("index")
		return err
	}
	committed := false
	err = c.recordContentBy(func(d digest.Digest, meta index.BlobMeta) error {
		if err := b.PutBlob(d, meta); err != nil {
			return err
		}
		committed = true
		return b.Commit()
	}, d, int64(len(m.Body)), m.Descriptor.MediaType, refs, false)
	if err != nil {
		return err
	}
	if !committed { // the content was recorded already
		if err := b.Commit(); err != nil {
			c.opts.Metrics.StoreError("index")
			return err
		}
	}
	for _, d := range ds {
		c.links.Add(linkCacheKey(repo, d), struct{}{})
	}
	if t != nil {
		c.tags.Add(tagCacheKey(repo, t.tag, t.accept), rec)
	}
	c.shareLinksLater(repo, linked...)
	c.manifests.Add(d, m)
	return nil
}

// unwaitedFailed notes an index batch that failed once applied
// (keepPeerManifest): what it held stays in memory only, and is asked for
// again once it leaves the hot set.
func (c *Cache) unwaitedFailed(err error) {
	c.opts.Metrics.StoreError("index")
	c.log.WithError(err).Warn("a peer's answer was not recorded in the index")
}

// storeManifest writes verified manifest bytes, indexes them with their
// references (so eviction keeps what they need), links repo to them and
// to the references stored from an upstream (linkableRefs), and keeps
// them hot. Every caller has validated
// the manifest (import, fetch); a push's goes through PushManifest,
// pinned.
func (c *Cache) storeManifest(repo Repo, m *Manifest, _ bool) error {
	refs, err := c.putManifest(m, false)
	if err != nil {
		return err
	}
	if err := c.link(repo, append([]digest.Digest{m.Descriptor.Digest}, c.linkableRefs(refs)...)...); err != nil {
		return err
	}
	c.manifests.Add(m.Descriptor.Digest, m)
	return nil
}

// linkableRefs are the references of a fetched manifest that it may link
// to its repository: those stored, from an upstream (invariant 8). A
// manifest naming a digest is not its upstream sending the bytes: a
// reference not stored yet is linked when its fill commits, under the
// repository whose upstream answered for it; pushed content is linked
// when the upstream proves it holds it (mayServe).
func (c *Cache) linkableRefs(refs []digest.Digest) []digest.Digest {
	return slices.DeleteFunc(slices.Clone(refs), func(d digest.Digest) bool {
		meta, err := c.index.Blob(d)
		return err != nil || meta.Pinned
	})
}

// putManifest writes verified manifest bytes and indexes them with their
// references, which it returns. Bytes that do not even parse are refused
// here, so that no path can store what is not a manifest.
func (c *Cache) putManifest(m *Manifest, pinned bool) ([]digest.Digest, error) {
	d := m.Descriptor.Digest
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		return nil, fmt.Errorf("store manifest %s: %w: %w", d, ErrManifestInvalid, err)
	}
	refs := p.Refs()
	if err := c.putBytes(c.life, d, m.Body); err != nil {
		c.opts.Metrics.StoreError("write")
		return nil, fmt.Errorf("store manifest %s: %w", d, err)
	}
	if err := c.recordContent(d, int64(len(m.Body)), m.Descriptor.MediaType, refs, pinned); err != nil {
		return nil, err
	}
	return refs, nil
}

// storedManifest returns a verified manifest from memory or disk.
func (c *Cache) storedManifest(d digest.Digest) (*Manifest, error) {
	if m, ok := c.manifests.Get(d); ok {
		return m, nil
	}
	meta, err := c.index.Blob(d)
	if err != nil {
		return nil, err
	}
	if meta.MediaType == "" || meta.Size > oci.MaxManifestSize {
		return nil, fmt.Errorf("%s is not a manifest: %w", d, ErrNotFound)
	}
	body, err := c.readManifest(c.life, d)
	if errors.Is(err, fs.ErrNotExist) {
		c.dropContent(d, meta.Size)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	m := &Manifest{Descriptor: ocispec.Descriptor{MediaType: meta.MediaType, Digest: d, Size: int64(len(body))}, Body: body}
	c.manifests.Add(d, m)
	return m, nil
}

// dropContent forgets an index entry whose file is gone (a crash, or an
// operator's rm): the next request fetches it again. It goes through the
// one removal path, so usage and the hot set stay right.
func (c *Cache) dropContent(d digest.Digest, size int64) {
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	if err := c.removeLocked(d, size); err != nil {
		c.log.WithError(err).WithField("digest", d).Warn("drop stale index entry")
	}
}

func tagCacheKey(repo Repo, tag, accept string) string {
	return repo.String() + "\x00" + tag + "\x00" + accept
}

func (c *Cache) tagRecord(repo Repo, tag, accept string) (index.TagRecord, bool) {
	k := tagCacheKey(repo, tag, accept)
	if r, ok := c.tags.Get(k); ok {
		return r, true
	}
	r, err := c.index.Tag(repo.String(), tag, accept)
	if err != nil {
		return r, false
	}
	c.tags.Add(k, r)
	return r, true
}

func (c *Cache) putTag(repo Repo, tag, accept string, desc ocispec.Descriptor, checked time.Time) error {
	c.shareMirroredLater(repo, tag, accept, tagRecordOf(desc, checked))
	return c.putTagLocal(repo, tag, accept, desc, checked)
}

// putTagLocal is putTag without sharing the record.
func (c *Cache) putTagLocal(repo Repo, tag, accept string, desc ocispec.Descriptor, checked time.Time) error {
	r := tagRecordOf(desc, checked)
	c.tags.Add(tagCacheKey(repo, tag, accept), r)
	return c.index.PutTag(repo.String(), tag, accept, r)
}

// tagRecordOf is the record of a tag that resolved to desc at checked.
func tagRecordOf(desc ocispec.Descriptor, checked time.Time) index.TagRecord {
	return index.TagRecord{Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size, Checked: checked}
}

func (c *Cache) forgetTag(repo Repo, tag string) {
	prefix := repo.String() + "\x00" + tag + "\x00"
	for _, k := range c.tags.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.tags.Remove(k)
		}
	}
	if err := c.index.DeleteTag(repo.String(), tag); err != nil {
		c.log.WithError(err).Warn("forget tag")
	}
	c.forgetMirroredLater(repo, tag)
}

// acceptKey is acceptKeyOf, remembered per raw header: clients send the
// same few Accept headers over and over.
func (c *Cache) acceptKey(accept []string) string {
	raw := strings.Join(accept, "\n")
	if k, ok := c.acceptKeys.Get(raw); ok {
		return k
	}
	k := acceptKeyOf(accept)
	c.acceptKeys.Add(raw, k)
	return k
}

// acceptKeyOf reduces Accept header values to a canonical set of media types,
// so that clients asking the same question share one cached answer. Clients
// that accept different manifest types get what the upstream gives each.
func acceptKeyOf(accept []string) string {
	set := map[string]bool{}
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt != "" {
				set[mt] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for mt := range set {
		out = append(out, mt)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
