package index

import (
	"encoding/json"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Referrers (OCI 1.1) are manifests whose subject is another manifest.
// Each is kept under its subject, so listing a subject's referrers is one
// prefix scan; the value is the descriptor the referrers API returns.

const prefixReferrer = "f/"

func referrerPrefix(repo string, subject digest.Digest) []byte {
	return []byte(prefixReferrer + repo + sep + subject.String() + sep)
}

func referrerKey(repo string, subject, d digest.Digest) []byte {
	return append(referrerPrefix(repo, subject), d.String()...)
}

// PutReferrer records that desc (a manifest in repo) refers to subject.
func (x *Index) PutReferrer(repo string, subject digest.Digest, desc ocispec.Descriptor) error {
	return x.put(referrerKey(repo, subject, desc.Digest), desc)
}

// DeleteReferrer forgets that d refers to subject.
func (x *Index) DeleteReferrer(repo string, subject, d digest.Digest) error {
	return x.del(referrerKey(repo, subject, d))
}

// Referrers lists the descriptors of repo's manifests that refer to
// subject, in digest order.
func (x *Index) Referrers(repo string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	out := []ocispec.Descriptor{}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: referrerPrefix(repo, subject), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d ocispec.Descriptor
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: referrers of %s: %w", subject, err)
	}
	return out, nil
}

// PutRepository notes a repository for the catalog (a manifest pushed by
// digest creates one without a tag).
func (x *Index) PutRepository(repo string) error { return x.put(repoKey(repo), struct{}{}) }
