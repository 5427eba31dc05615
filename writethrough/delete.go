package writethrough

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/upstream"
)

// Deletes are written through like pushes: a DELETE of a pushed tag,
// manifest or blob becomes a job in the same queue, behind any pending
// push of its repository, retried and kept across restarts the same way.
//
// Until the upstream has done it, the upstream still serves what was
// deleted here, and a read would fetch it back. So a pending delete is a
// tombstone: Pending says so, and the cache's reads of that tag, or of
// that digest in that repository, answer "unknown" without asking the
// upstream, unless it was pushed again since.

// Deleter is what write-through needs of an upstream to pass deletes on.
// upstream.Client implements it.
type Deleter interface {
	// DeleteManifest deletes a tag, or a manifest by digest.
	DeleteManifest(ctx context.Context, repo, ref string) error
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
}

// errRefused: the upstream will not delete (it answered 405, deletes are
// off there); retrying cannot change that.
var errRefused = errors.New("the upstream refuses deletes")

// dropped reports whether a failed job was dropped rather than kept for
// a retry.
func dropped(err error) bool { return errors.Is(err, errMissing) || errors.Is(err, errRefused) }

// Delete queues the upstream delete op (an index.OpDelete*) of tag or d
// in repo, when repo's upstream takes deletes, and returns the job's key
// for Settle.
func (wt *Worker) Delete(repo cache.Repo, op, tag string, d digest.Digest) ([]string, error) {
	if o, err := wt.origin(repo); err == nil {
		if _, ok := o.(Deleter); !ok {
			return nil, nil
		}
	}
	key := index.DeleteJobKey(repo.String(), op, tag, d)
	return []string{key}, wt.queue(repo, []string{key}, []index.Job{{Repo: repo.String(), Op: op, Tag: tag, Digest: d}})
}

// Pending reports whether the delete op of tag or d in repo is queued.
func (wt *Worker) Pending(repo cache.Repo, op, tag string, d digest.Digest) bool {
	return wt.tombstones.has(index.DeleteJobKey(repo.String(), op, tag, d))
}

// replicateDelete passes j's delete on. Gone already is done.
func (wt *Worker) replicateDelete(ctx context.Context, o cache.Origin, path string, j index.Job) error {
	del, ok := o.(Deleter)
	if !ok {
		return fmt.Errorf("upstream %s takes no deletes: %w", o.Name(), errRefused)
	}
	var err error
	switch j.Op {
	case index.OpDeleteTag:
		err = del.DeleteManifest(ctx, path, j.Tag)
	case index.OpDeleteManifest:
		err = del.DeleteManifest(ctx, path, j.Digest.String())
	case index.OpDeleteBlob:
		err = del.DeleteBlob(ctx, path, j.Digest)
		if err == nil || errors.Is(err, upstream.ErrNotFound) {
			wt.forgetMount(mountKey{o.Name(), j.Digest}, path)
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

// forgetMount stops offering path as a mount source of k's blob.
func (wt *Worker) forgetMount(k mountKey, path string) {
	wt.mountMu.Lock()
	defer wt.mountMu.Unlock()
	if wt.mounts[k] == path {
		delete(wt.mounts, k)
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
