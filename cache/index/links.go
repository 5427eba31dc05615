package index

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// Links record which repositories may serve which content. Content is
// stored once by digest, but a repository only serves what its upstream
// (or a push, mount or import into it) vouched for: knowing a digest must
// not open another repository's content.

// PutLinks records that repo may serve every digest in ds.
func (x *Index) PutLinks(repo string, ds ...digest.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	for _, d := range ds {
		if err := wb.Set(linkKey(repo, d), nil); err != nil {
			return fmt.Errorf("index: link %s: %w", repo, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("index: link %s: %w", repo, err)
	}
	return nil
}

// HasLink reports whether repo may serve d.
func (x *Index) HasLink(repo string, d digest.Digest) (bool, error) {
	err := x.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(linkKey(repo, d))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index: read link: %w", err)
	}
	return true, nil
}
