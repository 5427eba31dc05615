package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/upstream"
)

// Deletes are written through like pushes: a DELETE of a pushed tag,
// manifest or blob becomes a job in the same queue, behind any pending
// push of its repository, retried and kept across restarts the same way.
//
// Until the upstream has done it, the upstream still serves what was
// deleted here, and a read would fetch it back. So a pending delete is a
// tombstone: reads of that tag, or of that digest in that repository,
// answer "unknown" without asking the upstream (tombstoned.go), unless it
// was pushed again since.

// Deleter is what write-through needs of an upstream to pass deletes on.
// upstream.Client implements it.
type Deleter interface {
	// DeleteManifest deletes a tag, or a manifest by digest.
	DeleteManifest(ctx context.Context, repo, ref string) error
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
}

// The delete operations a job can carry (index.Job.Op; "" is a push).
const (
	opDeleteTag      = "delete-tag"
	opDeleteManifest = "delete-manifest"
	opDeleteBlob     = "delete-blob"
)

// errRefused: the upstream will not delete (it answered 405, deletes are
// off there); retrying cannot change that.
var errRefused = errors.New("the upstream refuses deletes")

// dropped reports whether a failed job was dropped rather than kept for
// a retry.
func dropped(err error) bool { return errors.Is(err, errMissing) || errors.Is(err, errRefused) }

// deleteThrough queues the upstream delete of a tag (tag set) or of
// digest d, when write-through is on and repo's upstream takes deletes,
// and returns the job's key for settleDeletes. It runs before the local
// delete, so the tombstone is up before the content is gone here.
func (w *Writer) deleteThrough(repo Repo, op, tag string, d digest.Digest) ([]string, error) {
	if w.wt == nil {
		return nil, nil
	}
	if o, err := w.c.origin(repo); err == nil {
		if _, ok := o.(Deleter); !ok {
			return nil, nil
		}
	}
	key := index.DeleteJobKey(repo.String(), op, tag, d)
	return []string{key}, w.wt.queue(repo, []string{key}, []index.Job{{Repo: repo.String(), Op: op, Tag: tag, Digest: d}})
}

// settleDeletes waits, in synchronous mode, for the upstream deletes of
// keys: done here, a failure there is the client's to know (the jobs stay
// queued, as a push's would).
func (w *Writer) settleDeletes(ctx context.Context, repo Repo, keys []string) error {
	if w.wt == nil {
		return nil
	}
	return w.wt.settle(ctx, repo, keys)
}

// replicateDelete passes j's delete on. Gone already is done.
func (wt *writeThrough) replicateDelete(ctx context.Context, o Origin, path string, j index.Job) error {
	del, ok := o.(Deleter)
	if !ok {
		return fmt.Errorf("upstream %s takes no deletes: %w", o.Name(), errRefused)
	}
	var err error
	switch j.Op {
	case opDeleteTag:
		err = del.DeleteManifest(ctx, path, j.Tag)
	case opDeleteManifest:
		err = del.DeleteManifest(ctx, path, j.Digest.String())
	case opDeleteBlob:
		err = del.DeleteBlob(ctx, path, j.Digest)
		if err == nil || errors.Is(err, upstream.ErrNotFound) {
			wt.forgetMount(j.Digest, path)
		}
	default:
		return fmt.Errorf("write-through job of unknown kind %q: %w", j.Op, errRefused)
	}
	var ue *upstream.Error
	switch {
	case errors.Is(err, upstream.ErrNotFound):
		return nil
	case errors.As(err, &ue) && ue.Status == http.StatusMethodNotAllowed:
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return err
}

// forgetMount stops offering path as a mount source of d.
func (wt *writeThrough) forgetMount(d digest.Digest, path string) {
	if wt.mounts[d] == path { // under wt.mu, as every use of mounts
		delete(wt.mounts, d)
	}
}

// tombstones are the keys of pending delete jobs.
type tombstones struct {
	mu  sync.RWMutex
	set map[string]struct{}
}

func (t *tombstones) add(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.set == nil {
		t.set = map[string]struct{}{}
	}
	t.set[key] = struct{}{}
}

func (t *tombstones) remove(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.set, key)
}

func (t *tombstones) has(key string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.set[key]
	return ok
}

// load reads the pending deletes a restart left in the queue, and where
// its line ends.
func (wt *writeThrough) load() error {
	return wt.w.c.index.Jobs(func(key string, j index.Job) error {
		if j.Op != "" {
			wt.tombstones.add(key)
		}
		if j.Enqueued.After(wt.last) {
			wt.last = j.Enqueued
		}
		return nil
	})
}
