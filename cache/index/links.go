package index

import (
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// Links record which repositories may serve which content. Content is
// stored once by digest, but a repository only serves what its upstream
// (or a push, mount or import into it) vouched for: knowing a digest must
// not open another repository's content.
//
// Each link is two keys: k/<repo>\x00<digest> answers "may repo serve d?"
// on every read, and h/<digest>\x00<repo> answers "does any repository
// still hold d?" when one deletes it. The reverse key is written before
// the forward one and both go in one transaction, so a crash can at worst
// leave a reverse key alone: content kept a little longer, never removed
// from under a repository that links it.

// PutLinks records that repo may serve every digest in ds.
func (x *Index) PutLinks(repo string, ds ...digest.Digest) error {
	return x.write(func(b *Batch) error { return b.PutLinks(repo, ds...) })
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

// Unlink removes repo's link to d and reports whether there was one and
// whether any repository still links d, all in one transaction.
func (x *Index) Unlink(repo string, d digest.Digest) (had, held bool, err error) {
	err = x.db.Update(func(txn *badger.Txn) error {
		_, gerr := txn.Get(linkKey(repo, d))
		if errors.Is(gerr, badger.ErrKeyNotFound) {
			return nil
		}
		if gerr != nil {
			return gerr
		}
		had = true
		if err := unlink(txn, repo, d); err != nil {
			return err
		}
		held = len(holders(txn, d)) > 0 // the iterator sees this transaction's deletes
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("index: unlink %s from %s: %w", d, repo, err)
	}
	if had {
		err = x.sync() // a delete is a client's word: it must not come back after a crash
	}
	return had, held, err
}

// holders lists the repositories linking d, as txn sees them.
func holders(txn *badger.Txn, d digest.Digest) []string {
	prefix := heldPrefix(d)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []string
	for it.Rewind(); it.Valid(); it.Next() {
		out = append(out, string(it.Item().Key()[len(prefix):]))
	}
	return out
}

// unlink removes repo's link to d within txn: the forward key first, so
// that no prefix of the deletes leaves a forward key without its reverse.
func unlink(txn *badger.Txn, repo string, d digest.Digest) error {
	if err := txn.Delete(linkKey(repo, d)); err != nil {
		return err
	}
	return txn.Delete(heldKey(d, repo))
}

// migrateLinks gives every forward link of a store written before the
// reverse keys existed its reverse key, once (v/links marks it done).
// Without them, a delete from one repository would take content that
// another one still links.
func (x *Index) migrateLinks() (int, error) {
	var done bool
	err := x.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(linksVersionKey))
		done = err == nil
		return nil
	})
	if err != nil || done {
		return 0, err
	}
	type pair struct {
		repo string
		d    digest.Digest
	}
	var pairs []pair
	err = x.keys([]byte(prefixLink), func(k string) {
		repo, d, ok := strings.Cut(k[len(prefixLink):], sep)
		if ok {
			pairs = append(pairs, pair{repo, digest.Digest(d)})
		}
	})
	if err != nil {
		return 0, err
	}
	err = x.batched(len(pairs)+1, func(txn *badger.Txn, i int) error {
		if i == len(pairs) {
			return txn.Set([]byte(linksVersionKey), []byte("2")) // last: only a finished migration is marked
		}
		return txn.Set(heldKey(pairs[i].d, pairs[i].repo), nil)
	})
	if err != nil {
		return 0, fmt.Errorf("index: migrate links: %w", err)
	}
	return len(pairs), x.sync()
}

// batched runs fn for 0..n-1 in as few transactions as Badger's size
// limit allows (Batch.add says how), waiting for each.
func (x *Index) batched(n int, fn func(txn *badger.Txn, i int) error) error {
	return x.write(func(b *Batch) error { return b.add(n, fn) })
}
