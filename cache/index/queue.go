package index

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// The write-through queue holds manifests pushed here, and deletes made
// here, that still have to reach the upstream. It lives in the index so
// that a restart loses none. Jobs are listed by enqueue time, so the
// oldest is tried first.

// Job is one pending replication: push Digest (and everything it
// references) to Repo upstream, under Tag when it has one; or, when Op
// names a delete, delete Tag or Digest there.
type Job struct {
	Repo      string        `json:"repo"` // full identity, upstream included
	Op        string        `json:"op,omitempty"`
	Tag       string        `json:"tag,omitempty"`
	Digest    digest.Digest `json:"digest,omitempty"`
	Enqueued  time.Time     `json:"enqueued"`
	Attempts  int           `json:"attempts"`
	NextTry   time.Time     `json:"nextTry"`
	LastError string        `json:"lastError,omitempty"`
}

// The delete operations a job can carry (Job.Op; "" is a push).
const (
	OpDeleteTag      = "delete-tag"
	OpDeleteManifest = "delete-manifest"
	OpDeleteBlob     = "delete-blob"
)

const prefixQueue = "q/"

// Queue is the index's write-through queue alone: what the package that
// works the queue may touch of the index.
type Queue struct{ x *Index }

// Queue returns the write-through queue kept in x.
func (x *Index) Queue() Queue { return Queue{x} }

// JobKey names a job: one per repository, tag and digest, so a push
// retried by its client is queued once.
func JobKey(repo, tag string, d digest.Digest) string {
	return repo + sep + tag + sep + d.String()
}

// DeleteJobKey names a delete job: one per repository, operation and
// target. It has one field more than a push's key, so the two never meet.
func DeleteJobKey(repo, op, tag string, d digest.Digest) string {
	return JobKey(repo, tag, d) + sep + op
}

// PutJob writes a job (new or updated) and syncs it.
func (q Queue) PutJob(key string, j Job) error {
	if err := q.x.put([]byte(prefixQueue+key), j); err != nil {
		return err
	}
	if err := q.x.db.Sync(); err != nil {
		return fmt.Errorf("index: sync: %w", err)
	}
	return nil
}

// DeleteJob removes a finished job.
func (q Queue) DeleteJob(key string) error { return q.x.del([]byte(prefixQueue + key)) }

// Job returns one job, or ErrNotFound.
func (q Queue) Job(key string) (Job, error) {
	var j Job
	return j, q.x.get([]byte(prefixQueue+key), &j)
}

// Jobs calls fn for every job, oldest first.
func (q Queue) Jobs(fn func(key string, j Job) error) error {
	var keys []string
	var jobs []Job
	err := q.x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixQueue), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var j Job
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &j) }); err != nil {
				return err
			}
			keys = append(keys, string(it.Item().Key()[len(prefixQueue):]))
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: read queue: %w", err)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return jobs[order[a]].Enqueued.Before(jobs[order[b]].Enqueued) })
	// fn runs outside the transaction: it does I/O.
	for _, i := range order {
		if err := fn(keys[i], jobs[i]); err != nil {
			return err
		}
	}
	return nil
}
