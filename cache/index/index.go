package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// ErrNotFound is returned for a key the index does not hold.
var ErrNotFound = errors.New("index: not found")

// BlobMeta describes verified content on disk.
type BlobMeta struct {
	Size      int64     `json:"size"`
	MediaType string    `json:"mediaType,omitempty"` // set for manifests
	Added     time.Time `json:"added"`
	// Pinned content (pushed here) is never evicted by the LRU.
	Pinned bool `json:"pinned,omitempty"`
	// Refs are what a manifest references: config, layers, child
	// manifests. Eviction keeps them while the manifest stays.
	Refs []digest.Digest `json:"refs,omitempty"`
}

// TagRecord is what a tag resolved to upstream, and when that was last checked.
type TagRecord struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Checked   time.Time     `json:"checked"`
}

// Index wraps one Badger database.
type Index struct {
	db    *badger.DB
	local localRepos

	// unwaited counts the commits of Unwaited batches whose callbacks
	// have not run: Close waits for them, and refuses new ones first.
	unwaitedMu sync.Mutex
	closing    bool
	unwaited   sync.WaitGroup
}

// Open opens (or creates) the index in dir. Badger's own memory is kept small:
// the hot path reads from in-memory LRUs above this layer, and a mirror's
// memory budget belongs to its clients.
func Open(dir string, log logrus.FieldLogger) (*Index, error) {
	if log == nil {
		quiet := logrus.New()
		quiet.SetLevel(logrus.PanicLevel)
		log = quiet
	}
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log.WithField("component", "badger")}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	x := &Index{db: db}
	if err := x.loadLocalRepos(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: count pushed tags: %w", err)
	}
	if n, err := x.migrateLinks(); err != nil {
		db.Close()
		return nil, err
	} else if n > 0 {
		log.WithField("links", n).Info("index: gave existing links their reverse keys")
	}
	return x, nil
}

// Close waits for the unwaited batches' writes, then flushes and closes
// the database.
func (x *Index) Close() error {
	x.unwaitedMu.Lock()
	x.closing = true
	x.unwaitedMu.Unlock()
	x.unwaited.Wait()
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("index: close: %w", err)
	}
	return nil
}

func (x *Index) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("index: encode %q: %w", key, err)
	}
	if err := x.db.Update(func(txn *badger.Txn) error { return txn.Set(key, b) }); err != nil {
		return fmt.Errorf("index: write %q: %w", key, err)
	}
	return nil
}

func (x *Index) get(key []byte, v any) error {
	err := x.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("index: read %q: %w", key, err)
	}
	return nil
}

func (x *Index) del(key []byte) error {
	if err := x.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
		return fmt.Errorf("index: delete %q: %w", key, err)
	}
	return nil
}

// PutBlob records verified content. A pinned record (pushed content) is
// synced to disk before PutBlob returns: losing it in a crash would make
// the LRU treat pushed content as evictable.
func (x *Index) PutBlob(d digest.Digest, m BlobMeta) error {
	if err := x.write(func(b *Batch) error { return b.PutBlob(d, m) }); err != nil {
		return err
	}
	if m.Pinned {
		return x.sync()
	}
	return nil
}

func (x *Index) sync() error {
	if err := x.db.Sync(); err != nil {
		return fmt.Errorf("index: sync: %w", err)
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Blob returns what the index knows of d, or ErrNotFound.
func (x *Index) Blob(d digest.Digest) (BlobMeta, error) {
	var m BlobMeta
	return m, x.get(blobKey(d), &m)
}

// PutTag records what repo:tag resolved to for one Accept set, and notes the
// repository for the catalog.
func (x *Index) PutTag(repo, tag, accept string, r TagRecord) error {
	return x.write(func(b *Batch) error { return b.PutTag(repo, tag, accept, r) })
}

// Tag returns the record for repo:tag and an Accept set, or ErrNotFound.
func (x *Index) Tag(repo, tag, accept string) (TagRecord, error) {
	var r TagRecord
	return r, x.get(tagKey(repo, tag, accept), &r)
}

// DeleteTag forgets every Accept set's record of repo:tag.
func (x *Index) DeleteTag(repo, tag string) error {
	prefix := []byte(string(tagPrefix(repo)) + tag + sep)
	err := x.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: delete tag %s:%s: %w", repo, tag, err)
	}
	return nil
}

// Tags lists the distinct tags cached for repo, sorted.
func (x *Index) Tags(repo string) ([]string, error) {
	prefix := tagPrefix(repo)
	seen := map[string]bool{}
	err := x.keys(prefix, func(k string) {
		tag, _, _ := strings.Cut(k[len(prefix):], sep)
		seen[tag] = true
	})
	if err != nil {
		return nil, fmt.Errorf("index: list tags of %s: %w", repo, err)
	}
	return sorted(seen), nil
}

// Repositories lists every repository seen, sorted.
func (x *Index) Repositories() ([]string, error) {
	seen := map[string]bool{}
	err := x.keys([]byte(prefixRepo), func(k string) { seen[k[len(prefixRepo):]] = true })
	if err != nil {
		return nil, fmt.Errorf("index: list repositories: %w", err)
	}
	return sorted(seen), nil
}

// Usage sums the sizes of all content the index records.
func (x *Index) Usage() (bytes, blobs int64, err error) {
	err = x.Blobs(func(_ digest.Digest, m BlobMeta) error {
		bytes += m.Size
		blobs++
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("index: usage: %w", err)
	}
	return bytes, blobs, nil
}

func (x *Index) keys(prefix []byte, fn func(string)) error {
	return x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			fn(string(it.Item().Key()))
		}
		return nil
	})
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// badgerLogger sends Badger's chatter to logrus at debug level, its warnings
// and errors where they belong.
type badgerLogger struct{ log logrus.FieldLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Errorf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warnf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debugf(strings.TrimSpace(f), a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debugf(strings.TrimSpace(f), a...) }

// TagRecords returns every record of repo's tag (every tag when tag is
// empty), pushed ones included.
func (x *Index) TagRecords(repo, tag string) ([]TagRecord, error) {
	var out []TagRecord
	collect := func(prefix []byte) error {
		return x.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				var r TagRecord
				if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		})
	}
	if tag == "" {
		if err := collect(tagPrefix(repo)); err != nil {
			return nil, fmt.Errorf("index: tags of %s: %w", repo, err)
		}
		if err := collect(localTagPrefix(repo)); err != nil {
			return nil, fmt.Errorf("index: local tags of %s: %w", repo, err)
		}
		return out, nil
	}
	// The separator after the tag keeps "v1" from matching "v1.2".
	if err := collect(append(tagPrefix(repo), []byte(tag+sep)...)); err != nil {
		return nil, fmt.Errorf("index: tags of %s: %w", repo, err)
	}
	r, err := x.LocalTag(repo, tag)
	switch {
	case err == nil:
		out = append(out, r)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return out, nil
}
