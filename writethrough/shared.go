package writethrough

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
)

// SharedQueue is the write-through queue of a cluster: each job a record
// in the store every replica shares (writethrough/<key, base64url>), so a
// push acknowledged by one replica is replicated even if that replica
// dies, by whichever replica leads the queue (Worker.Lead, under a lease).
// Every call is bounded by the records store's own timeout.
type SharedQueue struct{ Records records.Store }

const sharedQueuePrefix = "writethrough/"

func sharedKey(key string) string {
	return sharedQueuePrefix + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// PutJob writes j; it is durable when the store acknowledged it.
func (q SharedQueue) PutJob(key string, j index.Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if _, err := q.Records.Put(context.Background(), sharedKey(key), data, records.Always()); err != nil {
		return fmt.Errorf("shared queue: %w", err)
	}
	return nil
}

// DeleteJob removes a finished job.
func (q SharedQueue) DeleteJob(key string) error {
	if err := q.Records.Delete(context.Background(), sharedKey(key)); err != nil {
		return fmt.Errorf("shared queue: %w", err)
	}
	return nil
}

// Job reads one job; a missing one wraps index.ErrNotFound, as the
// index's queue answers.
func (q SharedQueue) Job(key string) (index.Job, error) {
	rec, err := q.Records.Get(context.Background(), sharedKey(key))
	if errors.Is(err, records.ErrNotFound) {
		return index.Job{}, fmt.Errorf("shared queue: job %q: %w", key, index.ErrNotFound)
	}
	if err != nil {
		return index.Job{}, fmt.Errorf("shared queue: %w", err)
	}
	var j index.Job
	if err := json.Unmarshal(rec.Data, &j); err != nil {
		return index.Job{}, fmt.Errorf("shared queue: job %q: %w", key, err)
	}
	return j, nil
}

// Jobs calls fn for every job, oldest first (by Enqueued, then key: the
// replicas' clocks order their jobs). It reads the whole queue first: a
// queue is as long as the pushes the upstream has not taken yet.
func (q SharedQueue) Jobs(fn func(key string, j index.Job) error) error {
	type keyed struct {
		key string
		job index.Job
	}
	var all []keyed
	ctx := context.Background()
	err := q.Records.List(ctx, sharedQueuePrefix, func(rkey string) error {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(rkey, sharedQueuePrefix))
		if err != nil {
			return nil // not a key PutJob wrote
		}
		j, err := q.Job(string(raw))
		if errors.Is(err, index.ErrNotFound) {
			return nil // finished since the listing
		}
		if err != nil {
			return err
		}
		all = append(all, keyed{string(raw), j})
		return nil
	})
	if err != nil {
		return fmt.Errorf("shared queue: %w", err)
	}
	slices.SortFunc(all, func(a, b keyed) int {
		return cmp.Or(a.job.Enqueued.Compare(b.job.Enqueued), strings.Compare(a.key, b.key))
	})
	for _, k := range all {
		if err := fn(k.key, k.job); err != nil {
			return err
		}
	}
	return nil
}
