// Package records names what the replicas of a cluster keep beside the
// content in their shared store: small objects (a tag record, a pushed
// tag, a link, an upload session's state, a lease), each read and
// replaced whole. It is the seam between the code that keeps such records
// (cache, cache/upload, the leases) and the store that holds them
// (cache/s3's Records).
//
// What must be exclusive is made so by the store's own conditional
// writes, as docs/cluster.md asks (no home-made consensus):
//
//	Put(key, data, IfAbsent())     create; ErrConflict if the key exists       (If-None-Match: *)
//	Put(key, data, IfMatch(v))     replace the version read; ErrConflict if     (If-Match: "v")
//	                               another writer replaced it meanwhile
//	Put(key, data, Always())       replace whatever is there
//
// A replica that loses a race reads the record again and decides anew.
package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrNotFound: no record has the key.
	ErrNotFound = errors.New("record not found")
	// ErrConflict: a conditional write's condition did not hold; another
	// writer created or replaced the record first.
	ErrConflict = errors.New("record changed by another writer")
	// ErrTooLarge: the record at key holds more than MaxSize bytes. Get
	// returns its Version and Modified with it, not its Data, so that a
	// reader can age or sweep it whatever it holds.
	ErrTooLarge = errors.New("record larger than a record may be")
)

// MaxSize bounds one record's bytes, so that reading one costs bounded
// memory whatever the store holds.
const MaxSize = 1 << 20

// Store keeps records by key.
type Store interface {
	// Get returns the record at key, or ErrNotFound (or ErrTooLarge).
	Get(ctx context.Context, key string) (Record, error)
	// Put writes data at key if cond holds, and returns the new version.
	Put(ctx context.Context, key string, data []byte, cond Cond) (version string, err error)
	// Delete removes the record at key; a missing one is no error.
	Delete(ctx context.Context, key string) error
	// List calls fn with each key under prefix (a key or a prefix ending
	// in "/"), in lexical order, until fn returns an error.
	List(ctx context.Context, prefix string, fn func(key string) error) error
}

// Record is a record as read.
type Record struct {
	Data     []byte
	Version  string    // what IfMatch takes to replace exactly this record
	Modified time.Time // when the store last wrote it, by the store's clock
}

// Cond is the condition of a Put.
type Cond struct {
	absent  bool
	version string
}

// Always writes whatever is there.
func Always() Cond { return Cond{} }

// IfAbsent writes only if no record has the key.
func IfAbsent() Cond { return Cond{absent: true} }

// IfMatch writes only if the record is still at version.
func IfMatch(version string) Cond { return Cond{version: version} }

// Absent and Version say what c asks, for the stores.
func (c Cond) Absent() bool    { return c.absent }
func (c Cond) Version() string { return c.version }

func (c Cond) String() string {
	switch {
	case c.absent:
		return "if absent"
	case c.version != "":
		return "if at version " + c.version
	}
	return "always"
}

// CheckKey refuses a key that is not a plain relative path of printable
// segments: stores put keys under prefixes of their own, and a key must
// not reach out of them.
func CheckKey(key string) error {
	if key == "" || len(key) > 900 {
		return fmt.Errorf("record key %q: empty or longer than 900 bytes", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("record key %q: empty, . or .. segment", key)
		}
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("record key %q: not printable ASCII", key)
		}
	}
	return nil
}

// CheckPrefix refuses a List prefix that CheckKey would refuse, allowing
// the trailing "/" and the empty prefix (every record).
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return CheckKey(strings.TrimSuffix(prefix, "/"))
}

// errStop ends a listing early; it never leaves Any or First.
var errStop = errors.New("stop listing")

// Any reports whether any record lies under prefix; the listing stops at
// the first.
func Any(ctx context.Context, s Store, prefix string) (bool, error) {
	found, err := First(ctx, s, prefix, func(string) (bool, error) { return true, nil })
	return found != "", err
}

// First lists prefix until match accepts a key, and returns that key (""
// when none does, or on the first error, which it returns).
func First(ctx context.Context, s Store, prefix string, match func(key string) (bool, error)) (string, error) {
	var found string
	err := s.List(ctx, prefix, func(key string) error {
		ok, err := match(key)
		if err != nil {
			return err
		}
		if ok {
			found = key
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return found, nil
	}
	return "", err
}
