package tier

import (
	"errors"
	"io/fs"
)

// UnavailableError is the shared tier failing to answer (not answering
// "no such object": a store that is down, refuses the credentials, or
// times out). The cache answers a client with a clean 503 rather than
// taking it for a miss: a fill it could not keep would be fetched again
// by every replica, and would never be verified into the cluster's store.
type UnavailableError struct {
	Op  string // what was asked of the shared tier: open, stat, put
	Err error
}

func (e *UnavailableError) Error() string {
	return "tier: the shared store did not answer (" + e.Op + "): " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// StoreUnavailable marks the error for the cache, which knows it by this
// method alone.
func (e *UnavailableError) StoreUnavailable() bool { return true }

// sharedErr classes an error of the shared tier: a miss stays a miss
// (fs.ErrNotExist), anything else is the store's unavailability.
func sharedErr(op string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return &UnavailableError{Op: op, Err: err}
}
