package index

import (
	"encoding/binary"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// Access times drive LRU eviction. They are written in batches (see
// cache's access log), never on the request path, and read back whole when
// eviction plans.

// PutAccess records last-access times in one batch.
func (x *Index) PutAccess(times map[digest.Digest]time.Time) error {
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	for d, t := range times {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(t.UnixNano()))
		if err := wb.Set(accessKey(d), v[:]); err != nil {
			return fmt.Errorf("index: write access times: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("index: write access times: %w", err)
	}
	return nil
}

// Accesses returns every recorded last-access time.
func (x *Index) Accesses() (map[digest.Digest]time.Time, error) {
	out := map[digest.Digest]time.Time{}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixAccess), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			d := digest.Digest(it.Item().Key()[len(prefixAccess):])
			err := it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					out[d] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read access times: %w", err)
	}
	return out, nil
}

// Blobs calls fn for every content record.
func (x *Index) Blobs(fn func(d digest.Digest, m BlobMeta) error) error {
	return x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixBlob), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var m BlobMeta
			if err := it.Item().Value(func(b []byte) error { return jsonUnmarshal(b, &m) }); err != nil {
				return err
			}
			if err := fn(digest.Digest(it.Item().Key()[len(prefixBlob):]), m); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForgetBlob removes a content record, its access time and every link to
// it.
func (x *Index) ForgetBlob(d digest.Digest) error {
	_, err := x.ForgetContent(d)
	return err
}

// ForgetContent is ForgetBlob, and returns the repositories that linked
// d. Links of content that is gone go with it: whatever brings the
// content back (a fill, a pull of a manifest, a push) links it again for
// the repository it came through, and links left behind would only grow.
//
// Content shared by thousands of repositories has more links than one
// transaction holds, so the deletes are batched: links first (each
// forward key before its reverse one, as links.go requires), the record
// last. A failure part way leaves the record, so whoever forgets d next
// finishes the job.
func (x *Index) ForgetContent(d digest.Digest) ([]string, error) {
	var repos []string
	err := x.db.View(func(txn *badger.Txn) error {
		repos = holders(txn, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: forget %s: %w", d, err)
	}
	err = x.batched(len(repos)+1, func(txn *badger.Txn, i int) error {
		if i < len(repos) {
			return unlink(txn, repos[i], d)
		}
		if err := txn.Delete(accessKey(d)); err != nil {
			return err
		}
		return txn.Delete(blobKey(d))
	})
	if err != nil {
		return nil, fmt.Errorf("index: forget %s: %w", d, err)
	}
	return repos, nil
}
