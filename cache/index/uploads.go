package index

import (
	"encoding/json"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Upload sessions are blob pushes in progress. Their bytes live in a file
// under data/uploads/; this record says how many of them count. A crash
// between writing a chunk and recording it leaves the file longer than
// Size, and the next request cuts it back: Size is the truth.

// UploadRecord is one upload session.
type UploadRecord struct {
	Repo    string    `json:"repo"`    // the repository it was started in, upstream included
	Size    int64     `json:"size"`    // bytes received and synced to the file
	Started time.Time `json:"started"` // for expiry of abandoned sessions
	Updated time.Time `json:"updated"`
	// HashState is the running sha256 of the first Size bytes
	// (encoding.BinaryMarshaler), so finishing an upload costs no second
	// read of the file. Empty when unknown: the file is hashed again.
	HashState []byte `json:"hashState,omitempty"`
	// Client is who opened the session (cache/upload.Limits caps the
	// sessions per client); "" in records from before the caps.
	Client string `json:"client,omitempty"`
}

const prefixUpload = "u/"

func uploadKey(id string) []byte { return []byte(prefixUpload + id) }

// PutUpload records a session and syncs it: a client was told about these
// bytes, so a crash must not forget them.
func (x *Index) PutUpload(id string, r UploadRecord) error {
	if err := x.put(uploadKey(id), r); err != nil {
		return err
	}
	if err := x.db.Sync(); err != nil {
		return fmt.Errorf("index: sync: %w", err)
	}
	return nil
}

// Upload returns a session, or ErrNotFound.
func (x *Index) Upload(id string) (UploadRecord, error) {
	var r UploadRecord
	return r, x.get(uploadKey(id), &r)
}

// DeleteUpload forgets a session.
func (x *Index) DeleteUpload(id string) error { return x.del(uploadKey(id)) }

// Uploads calls fn for every session.
func (x *Index) Uploads(fn func(id string, r UploadRecord) error) error {
	return x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixUpload), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r UploadRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return fmt.Errorf("index: read upload: %w", err)
			}
			if err := fn(string(it.Item().Key()[len(prefixUpload):]), r); err != nil {
				return err
			}
		}
		return nil
	})
}
