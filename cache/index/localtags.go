package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	badger "github.com/dgraph-io/badger/v4"
)

// Local tags are tags pushed to this wharf. They are the site's own word
// about a name, so a pull finds them before asking the upstream, and they
// are never revalidated.

// localRepos counts the pushed tags of each repository, so the lookup
// every pull by tag makes ("was this pushed here?") is answered from memory
// for the many repositories that only mirror.
type localRepos struct {
	mu    sync.RWMutex
	count map[string]int
}

func (l *localRepos) has(repo string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.count[repo] > 0
}

func (l *localRepos) add(repo string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[repo] += n; l.count[repo] <= 0 {
		delete(l.count, repo)
	}
}

// loadLocalRepos counts the pushed tags at open.
func (x *Index) loadLocalRepos() error {
	x.local.count = map[string]int{}
	return x.keys([]byte(prefixLocal), func(k string) {
		repo, _, _ := strings.Cut(k[len(prefixLocal):], sep)
		x.local.count[repo]++
	})
}

// PutLocalTag records a pushed tag and notes the repository for the catalog.
func (x *Index) PutLocalTag(repo, tag string, r TagRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("index: encode tag: %w", err)
	}
	added := false
	err = x.db.Update(func(txn *badger.Txn) error {
		_, err := txn.Get(localTagKey(repo, tag))
		added = errors.Is(err, badger.ErrKeyNotFound)
		if err := txn.Set(localTagKey(repo, tag), b); err != nil {
			return err
		}
		return txn.Set(repoKey(repo), []byte("{}"))
	})
	if err != nil {
		return fmt.Errorf("index: write local tag %s:%s: %w", repo, tag, err)
	}
	if added {
		x.local.add(repo, 1)
	}
	return x.sync() // a pushed tag is the site's own data: survive a crash
}

// LocalTag returns a pushed tag's record, or ErrNotFound.
func (x *Index) LocalTag(repo, tag string) (TagRecord, error) {
	var r TagRecord
	if !x.local.has(repo) {
		return r, ErrNotFound
	}
	return r, x.get(localTagKey(repo, tag), &r)
}

// DeleteLocalTag forgets a pushed tag.
func (x *Index) DeleteLocalTag(repo, tag string) error {
	existed := false
	err := x.db.Update(func(txn *badger.Txn) error {
		_, err := txn.Get(localTagKey(repo, tag))
		existed = err == nil
		return txn.Delete(localTagKey(repo, tag))
	})
	if err != nil {
		return fmt.Errorf("index: delete local tag %s:%s: %w", repo, tag, err)
	}
	if existed {
		x.local.add(repo, -1)
	}
	return nil
}

// LocalTags lists the tags pushed to repo, sorted.
func (x *Index) LocalTags(repo string) ([]string, error) {
	prefix := localTagPrefix(repo)
	seen := map[string]bool{}
	if err := x.keys(prefix, func(k string) { seen[k[len(prefix):]] = true }); err != nil {
		return nil, fmt.Errorf("index: list local tags of %s: %w", repo, err)
	}
	return sorted(seen), nil
}
