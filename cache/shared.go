package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/oci"
)

// Records is where the replicas of a cluster keep the records they share
// beside the content (package records; cache/s3's Records keeps them in
// the bucket). With Options.Records set, the cache keeps there what
// another replica needs to serve, each kind under the rule its
// consequence asks for (sharedkeys.go draws the keys):
//
//   - Pushed tags and the links of pushed content are written to the
//     bucket before the push is acknowledged, and deleted from it before a
//     delete is: a push or a delete fails, unacknowledged, when the
//     bucket cannot take it.
//   - Pushed tags are read through to the bucket (one GET of a small
//     object per pull by tag), so every replica answers what the last
//     acknowledged push or delete said, through any replica. The local
//     index keeps a copy, used while the bucket cannot answer.
//   - Links of pinned content (pushed, mounted, imported) are checked in
//     the bucket on every use: a delete through one replica stops the
//     others serving the content at once. Links of mirrored content are
//     trusted once known, as on one node: the upstream vouched for them
//     and vouches again after a delete.
//   - A link this replica lacks is looked up in the bucket before the
//     upstream is asked, and learned.
//   - Links of mirrored content and mirrored tag records (digest, media
//     type and the stamp of the upstream's answer) are written in the
//     background, best effort: they spare the upstream requests (the
//     index rebuild, a stale tag served while the upstream is down by a
//     replica that never saw it), and their loss costs a request.
//
// While the bucket fails a read, reads skip it for sharedBackoff and use
// the local index: local hits stay fast while the bucket is down, and no
// push or delete can be acknowledged meanwhile, so the local view misses
// only what was acknowledged before the outage and not yet read here.
type Records interface {
	Get(ctx context.Context, key string) (records.Record, error)
	Put(ctx context.Context, key string, data []byte, cond records.Cond) (version string, err error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string, fn func(key string) error) error
}

const (
	// sharedBackoff is how long reads skip the bucket after one failed.
	sharedBackoff = 5 * time.Second
	// sharedQueue bounds the background writes waiting; past it they are
	// dropped (and counted): they are hints, not the site's data.
	sharedQueue = 4096
	// sharedWriters bounds a push's record writes in flight at once.
	sharedWriters = 8
)

// shared is the Cache's side of Options.Records.
type shared struct {
	store     Records
	queue     chan sharedJob
	downUntil atomic.Int64 // unix nanoseconds: reads skip the bucket until then

	// pending are links to content not recorded yet (a fill links its
	// repository when the upstream answers, and commits when the bytes
	// are verified): shared when the content is recorded. Bounded: a
	// fill that fails leaves its entry until the map is cleared.
	pendingMu sync.Mutex
	pending   map[digest.Digest][]Repo
}

// sharedPending bounds shared.pending.
const sharedPending = 4096

// sharedJob is a background write.
type sharedJob struct {
	op, key string
	do      func(context.Context) error
}

// readThrough reports whether reads should ask the bucket now.
func (c *Cache) readThrough() bool {
	return c.rec != nil && time.Now().UnixNano() >= c.rec.downUntil.Load()
}

// sharedFailed counts and logs a failed op on a record; a failed read
// makes reads skip the bucket for a while.
func (c *Cache) sharedFailed(op, key string, err error) {
	c.opts.Metrics.RecordsError(op)
	if op == "get" || op == "list" {
		c.rec.downUntil.Store(time.Now().Add(sharedBackoff).UnixNano())
	}
	c.log.WithError(err).WithFields(map[string]any{"op": op, "key": key}).Warn("shared records: the bucket failed; using the local index")
}

// readCtx bounds a read through to the bucket: a client waits on it.
func (c *Cache) readCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.RecordsReadTimeout)
}

func (c *Cache) getShared(ctx context.Context, key string, v any) error {
	ctx, cancel := c.readCtx(ctx)
	defer cancel()
	r, err := c.rec.store.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	return nil
}

func (c *Cache) putShared(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	if _, err := c.rec.store.Put(ctx, key, b, records.Always()); err != nil {
		c.sharedFailed("put", key, err)
		return fmt.Errorf("shared records: %w", err)
	}
	return nil
}

func (c *Cache) deleteShared(ctx context.Context, key string) error {
	if err := c.rec.store.Delete(ctx, key); err != nil {
		c.sharedFailed("delete", key, err)
		return fmt.Errorf("shared records: %w", err)
	}
	return nil
}

// later queues a background write; a full queue drops it (counted).
func (c *Cache) later(op, key string, do func(context.Context) error) {
	select {
	case c.rec.queue <- sharedJob{op: op, key: key, do: do}:
	default:
		c.opts.Metrics.RecordsError("dropped")
	}
}

// writeShared runs the background writes until stop, then those still
// queued (bounded by a short grace: a replica that stops loses hints at
// worst).
func (c *Cache) writeShared(stop <-chan struct{}) {
	defer c.bg.Done()
	run := func(ctx context.Context, j sharedJob) {
		if err := j.do(ctx); err != nil {
			c.sharedFailed(j.op, j.key, err)
		}
	}
	for {
		select {
		case j := <-c.rec.queue:
			run(context.Background(), j) // each call bounded by the store's own timeout
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				select {
				case j := <-c.rec.queue:
					if ctx.Err() == nil {
						run(ctx, j)
					}
				default:
					return
				}
			}
		}
	}
}

// shareLinksLater shares repo's links to ds in the background, each once
// its content is recorded.
func (c *Cache) shareLinksLater(repo Repo, ds ...digest.Digest) {
	if c.rec == nil {
		return
	}
	var known []digest.Digest
	for _, d := range ds {
		if _, err := c.index.Blob(d); err == nil {
			known = append(known, d)
			continue
		}
		c.rec.pendingMu.Lock()
		if len(c.rec.pending) >= sharedPending {
			clear(c.rec.pending)
			c.opts.Metrics.RecordsError("dropped")
		}
		c.rec.pending[d] = append(c.rec.pending[d], repo)
		c.rec.pendingMu.Unlock()
	}
	if len(known) > 0 {
		c.later("put", repo.String(), func(ctx context.Context) error { return c.shareLinks(ctx, repo, known...) })
	}
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
		c.later("put", repo.String(), func(ctx context.Context) error { return c.shareLinks(ctx, repo, d) })
	}
}

// shareLinks writes repo's links to ds to the bucket, each with what the
// index knows of its content, at most sharedWriters at once. Content the
// index does not know is skipped: nothing to vouch for.
func (c *Cache) shareLinks(ctx context.Context, repo Repo, ds ...digest.Digest) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(sharedWriters)
	for _, d := range ds {
		key, err := sharedLinkKey(repo, d)
		if err != nil {
			return err
		}
		meta, err := c.index.Blob(d)
		if err != nil {
			continue
		}
		l := sharedLink{Size: meta.Size, MediaType: meta.MediaType, Pinned: meta.Pinned}
		g.Go(func() error { return c.putShared(ctx, key, l) })
	}
	return g.Wait()
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
	errHeld := errors.New("held")
	err = c.rec.store.List(ctx, prefix, func(string) error { return errHeld })
	switch {
	case errors.Is(err, errHeld):
		return true
	case err != nil:
		c.sharedFailed("list", prefix, err)
		return true
	}
	return false
}

// learn makes a link the bucket holds this replica's own: the content's
// index record (a manifest's references read from its verified bytes),
// pinned as the record says, then the link.
func (c *Cache) learn(ctx context.Context, repo Repo, d digest.Digest, l sharedLink) error {
	meta, err := c.index.Blob(d)
	switch {
	case err == nil:
		if l.Pinned && !meta.Pinned {
			if err := c.pin(d, meta.Size); err != nil {
				return err
			}
		}
	default:
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
	body, err := c.readManifest(ctx, d)
	if err != nil {
		return nil, err
	}
	if !d.Algorithm().Available() || d.Algorithm().FromBytes(body) != d {
		return nil, fmt.Errorf("manifest %s: the stored bytes do not match: %w", d, ErrDigestInvalid)
	}
	p, err := oci.ParseManifest(body)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", d, ErrManifestInvalid, err)
	}
	c.manifests.Add(d, &Manifest{Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}, Body: body})
	return p.Refs(), nil
}
