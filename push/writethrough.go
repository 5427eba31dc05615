package push

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// WriteThrough passes pushes and deletes made here on to the upstream;
// package writethrough implements it, over the cache's Queue, and owns
// the worker that does so. The write path queues through it and asks it
// which deletes are still pending there (tombstoned.go hides them).
//
// Jobs are named by the queue's op codes (index.OpDelete*): this is why
// push imports cache/index, for those constants alone; the queue's
// records are written by the cache (Cache.Queue) and writethrough.
type WriteThrough interface {
	// Replicates reports whether repo's upstream takes pushes.
	Replicates(repo cache.Repo) bool
	// Push queues manifest d, pushed to repo, for its upstream under
	// tags (by digest without tags). In synchronous mode it returns once
	// the upstream has it.
	Push(ctx context.Context, repo cache.Repo, tags []string, d digest.Digest) error
	// Delete queues the upstream delete op (an index.OpDelete*) of tag or
	// d in repo and returns the job's key for Settle; none when repo's
	// upstream takes no deletes.
	Delete(repo cache.Repo, op, tag string, d digest.Digest) ([]string, error)
	// Settle, in synchronous mode, runs repo's queue up to keys and
	// returns its failure; otherwise it returns at once.
	Settle(ctx context.Context, repo cache.Repo, keys []string) error
	// Pending reports whether the delete op of tag or d in repo is still
	// queued: its tombstone.
	Pending(repo cache.Repo, op, tag string, d digest.Digest) bool
}

// deleteThrough queues the upstream delete of a tag (tag set) or of
// digest d, when write-through is on, and returns the job's key for
// settleDeletes. It runs before the local delete, so the tombstone is up
// before the content is gone here.
func (w *Writer) deleteThrough(repo cache.Repo, op, tag string, d digest.Digest) ([]string, error) {
	if w.wt == nil {
		return nil, nil
	}
	return w.wt.Delete(repo, op, tag, d)
}

// settleDeletes waits, in synchronous mode, for the upstream deletes of
// keys: done here, a failure there is the client's to know (the jobs stay
// queued, as a push's would).
func (w *Writer) settleDeletes(ctx context.Context, repo cache.Repo, keys []string) error {
	if w.wt == nil {
		return nil
	}
	return w.wt.Settle(ctx, repo, keys)
}
