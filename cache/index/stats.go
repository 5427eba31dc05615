package index

import (
	"encoding/json"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// RepoStats counts a repository's manifest requests and how many the cache
// answered without the upstream. They survive restarts, for `wharf du`.
type RepoStats struct {
	Pulls int64 `json:"pulls"`
	Hits  int64 `json:"hits"`
}

// AddStats adds deltas to the stored counters, in one transaction.
func (x *Index) AddStats(deltas map[string]RepoStats) error {
	err := x.db.Update(func(txn *badger.Txn) error {
		for repo, d := range deltas {
			var cur RepoStats
			item, err := txn.Get(statsKey(repo))
			switch {
			case err == nil:
				if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &cur) }); err != nil {
					return err
				}
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			cur.Pulls += d.Pulls
			cur.Hits += d.Hits
			b, _ := json.Marshal(cur)
			if err := txn.Set(statsKey(repo), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: write stats: %w", err)
	}
	return nil
}

// Stats returns every repository's counters.
func (x *Index) Stats() (map[string]RepoStats, error) {
	out := map[string]RepoStats{}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixStats), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var s RepoStats
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &s) }); err != nil {
				return err
			}
			out[string(it.Item().Key()[len(prefixStats):])] = s
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read stats: %w", err)
	}
	return out, nil
}
