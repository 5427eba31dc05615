package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
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
//   - A pushed manifest's referrer record and its repository's record are
//     written with its links; the referrers API reads through, and the
//     catalog adds the bucket's repositories (sharedreferrers.go).
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

	mirrored mirroredRepos // whose mirrored/ record this replica wrote (sharedcatalog.go)
	repos    pushedRepos   // the repositories that can have pushed tags (sharedrepos.go)
	catalog  sharedCatalog // the bucket's repositories as last listed (sharedcatalog.go)
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

// putShared and deleteShared write a record. A failure fails the push or
// delete that asked, unacknowledged, as ErrStoreUnavailable (proxy's 503
// UNAVAILABLE, which clients retry).
func (c *Cache) putShared(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", key, err)
	}
	if _, err := c.rec.store.Put(ctx, key, b, records.Always()); err != nil {
		c.sharedFailed("put", key, err)
		return fmt.Errorf("shared records: %w: %w", ErrStoreUnavailable, err)
	}
	return nil
}

func (c *Cache) deleteShared(ctx context.Context, key string) error {
	if err := c.rec.store.Delete(ctx, key); err != nil {
		c.sharedFailed("delete", key, err)
		return fmt.Errorf("shared records: %w: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// deleteUnder deletes the records listed under prefix, but those keep
// says to keep (nil keeps none).
func (c *Cache) deleteUnder(ctx context.Context, prefix string, keep func(ctx context.Context, key string) bool) error {
	var keys []string
	if err := c.rec.store.List(ctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return err
	}
	for _, k := range keys {
		if keep != nil && keep(ctx, k) {
			continue
		}
		if err := c.rec.store.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// later queues a background write; a full queue drops it (counted, and
// false).
func (c *Cache) later(op, key string, do func(context.Context) error) bool {
	select {
	case c.rec.queue <- sharedJob{op: op, key: key, do: do}:
		return true
	default:
		c.opts.Metrics.RecordsError("dropped")
		return false
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
