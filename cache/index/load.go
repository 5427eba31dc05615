package index

import (
	"encoding/json"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Empty reports whether the index holds nothing a store wrote: no
// content, link, tag or repository (the links' version mark, which every
// new index writes at open, does not count).
func (x *Index) Empty() (bool, error) {
	empty := true
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if string(it.Item().Key()) != linksVersionKey {
				empty = false
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("index: is it empty: %w", err)
	}
	return empty, nil
}

// A Loader fills an index in bulk (a replica rebuilding its index from
// the records the cluster shares): writes go through one Badger write
// batch, which commits as it fills, so memory stays bounded however many
// records there are. Nothing written is visible as a whole until Flush;
// each write is the same keys the single writes make.
type Loader struct {
	x     *Index
	wb    *badger.WriteBatch
	local map[string]int // pushed tags loaded, per repository
}

// Load starts a bulk load.
func (x *Index) Load() *Loader {
	return &Loader{x: x, wb: x.db.NewWriteBatch(), local: map[string]int{}}
}

func (l *Loader) set(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("index: encode %q: %w", key, err)
	}
	if err := l.wb.Set(key, b); err != nil {
		return fmt.Errorf("index: load %q: %w", key, err)
	}
	return nil
}

// Blob records content, as PutBlob.
func (l *Loader) Blob(d digest.Digest, m BlobMeta) error { return l.set(blobKey(d), m) }

// Link records that repo may serve d, as PutLinks (reverse key first).
func (l *Loader) Link(repo string, d digest.Digest) error {
	if err := l.wb.Set(heldKey(d, repo), nil); err != nil {
		return fmt.Errorf("index: load link: %w", err)
	}
	if err := l.wb.Set(linkKey(repo, d), nil); err != nil {
		return fmt.Errorf("index: load link: %w", err)
	}
	return nil
}

// Tag records a mirrored tag for one Accept set, as PutTag.
func (l *Loader) Tag(repo, tag, accept string, r TagRecord) error {
	if err := l.set(tagKey(repo, tag, accept), r); err != nil {
		return err
	}
	return l.set(repoKey(repo), struct{}{})
}

// LocalTag records a pushed tag, as PutLocalTag.
func (l *Loader) LocalTag(repo, tag string, r TagRecord) error {
	if err := l.set(localTagKey(repo, tag), r); err != nil {
		return err
	}
	l.local[repo]++
	return l.set(repoKey(repo), struct{}{})
}

// Referrer records that desc (a manifest in repo) refers to subject, as
// PutReferrer.
func (l *Loader) Referrer(repo string, subject digest.Digest, desc ocispec.Descriptor) error {
	return l.set(referrerKey(repo, subject, desc.Digest), desc)
}

// Repository notes a repository for the catalog, as PutRepository.
func (l *Loader) Repository(repo string) error { return l.set(repoKey(repo), struct{}{}) }

// Flush commits what was loaded, synced (pushed tags and pins are the
// site's own data), and counts the pushed tags it brought.
func (l *Loader) Flush() error {
	if err := l.wb.Flush(); err != nil {
		return fmt.Errorf("index: load: %w", err)
	}
	for repo, n := range l.local {
		l.x.local.add(repo, n)
	}
	return l.x.sync()
}
