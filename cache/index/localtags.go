package index

import (
	"encoding/json"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// Local tags are tags pushed to this wharf. They are the site's own word
// about a name, so a pull finds them before asking the upstream, and they
// are never revalidated.

// PutLocalTag records a pushed tag and notes the repository for the catalog.
func (x *Index) PutLocalTag(repo, tag string, r TagRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("index: encode tag: %w", err)
	}
	err = x.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(localTagKey(repo, tag), b); err != nil {
			return err
		}
		return txn.Set(repoKey(repo), []byte("{}"))
	})
	if err != nil {
		return fmt.Errorf("index: write local tag %s:%s: %w", repo, tag, err)
	}
	return x.sync() // a pushed tag is the site's own data: survive a crash
}

// LocalTag returns a pushed tag's record, or ErrNotFound.
func (x *Index) LocalTag(repo, tag string) (TagRecord, error) {
	var r TagRecord
	return r, x.get(localTagKey(repo, tag), &r)
}

// DeleteLocalTag forgets a pushed tag.
func (x *Index) DeleteLocalTag(repo, tag string) error { return x.del(localTagKey(repo, tag)) }

// LocalTags lists the tags pushed to repo, sorted.
func (x *Index) LocalTags(repo string) ([]string, error) {
	prefix := localTagPrefix(repo)
	seen := map[string]bool{}
	if err := x.keys(prefix, func(k string) { seen[k[len(prefix):]] = true }); err != nil {
		return nil, fmt.Errorf("index: list local tags of %s: %w", repo, err)
	}
	return sorted(seen), nil
}
