package index

import (
	"encoding/json"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// Batch gathers writes in one transaction. Index's own writers wait for
// their commit. A batch from Unwaited does not: Commit returns once the
// transaction has its commit timestamp, and Badger's writer applies it
// meanwhile. Badger applies commits in timestamp order, and every
// transaction waits at its start for the commits before it, so whatever
// reads or writes the index afterwards sees the batch as if it had been
// waited for. A crash before the write reaches the value log loses it, as
// it loses any write not yet synced.
type Batch struct {
	x      *Index
	txn    *badger.Txn
	wait   bool
	failed func(error) // an unwaited commit's error, once applied
}

// Unwaited begins a batch whose Commit does not wait for the write (see
// Batch), for what the next pull learns again if it is lost: mirrored
// content's record, links, a tag's record. failed gets a write that
// fails once applied.
func (x *Index) Unwaited(failed func(error)) *Batch {
	return &Batch{x: x, txn: x.db.NewTransaction(true), failed: failed}
}

// write runs fn on a batch and commits it, waiting for the write.
func (x *Index) write(fn func(b *Batch) error) error {
	b := &Batch{x: x, txn: x.db.NewTransaction(true), wait: true}
	defer b.Discard()
	if err := fn(b); err != nil {
		return err
	}
	return b.Commit()
}

// Discard drops what was not committed; after Commit it does nothing.
func (b *Batch) Discard() { b.txn.Discard() }

// Commit commits the batch: waiting for the write, or not (Unwaited).
func (b *Batch) Commit() error {
	if b.wait {
		if err := b.txn.Commit(); err != nil {
			return fmt.Errorf("index: commit: %w", err)
		}
		return nil
	}
	x := b.x
	x.unwaitedMu.Lock()
	if x.closing { // an Add after Close's Wait began would race it
		x.unwaitedMu.Unlock()
		return fmt.Errorf("index: commit: %w", badger.ErrDBClosed)
	}
	x.unwaited.Add(1)
	x.unwaitedMu.Unlock()
	b.txn.CommitWith(func(err error) {
		defer x.unwaited.Done()
		if err != nil && b.failed != nil {
			b.failed(fmt.Errorf("index: unwaited write: %w", err))
		}
	})
	return nil
}

// add runs fn for 0..n-1 in as few transactions as Badger's size limit
// allows: a large index's references, or a migration, may not fit in
// one. A call cut short by the limit is committed as far as it got and
// run again whole in the next transaction, so fn writes its keys in an
// order whose every prefix is safe (reverse link before forward link).
func (b *Batch) add(n int, fn func(txn *badger.Txn, i int) error) error {
	for i := 0; i < n; i++ {
		err := fn(b.txn, i)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := b.Commit(); err != nil {
				return err
			}
			b.txn = b.x.db.NewTransaction(true)
			err = fn(b.txn, i)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// PutBlob records verified content, unpinned in an unwaited batch: a
// pinned record is synced before Index.PutBlob returns.
func (b *Batch) PutBlob(d digest.Digest, m BlobMeta) error {
	if m.Pinned && !b.wait {
		return fmt.Errorf("index: pinned %s in a batch not waited for", d)
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("index: encode %s: %w", d, err)
	}
	return b.add(1, func(txn *badger.Txn, _ int) error { return txn.Set(blobKey(d), v) })
}

// PutLinks records that repo may serve every digest in ds.
func (b *Batch) PutLinks(repo string, ds ...digest.Digest) error {
	err := b.add(len(ds), func(txn *badger.Txn, i int) error {
		if err := txn.Set(heldKey(ds[i], repo), nil); err != nil {
			return err
		}
		return txn.Set(linkKey(repo, ds[i]), nil)
	})
	if err != nil {
		return fmt.Errorf("index: link %s: %w", repo, err)
	}
	return nil
}

// PutTag records what repo:tag resolved to for one Accept set, and notes
// the repository for the catalog.
func (b *Batch) PutTag(repo, tag, accept string, r TagRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("index: encode tag: %w", err)
	}
	err = b.add(1, func(txn *badger.Txn, _ int) error {
		if err := txn.Set(tagKey(repo, tag, accept), v); err != nil {
			return err
		}
		return txn.Set(repoKey(repo), []byte("{}"))
	})
	if err != nil {
		return fmt.Errorf("index: write tag %s:%s: %w", repo, tag, err)
	}
	return nil
}
