package upload

import (
	"errors"
	"fmt"
)

// Errors of a session. The write path re-exports them under its own
// names (push.ErrUploadUnknown, …; cache.ErrDigestInvalid and
// cache.ErrSizeInvalid, which import shares), and proxy/errors.go maps
// those to v2 codes.
var (
	// ErrUnknown: no upload session with that id in that repository.
	ErrUnknown = errors.New("blob upload unknown")
	// ErrInvalid: a chunk that does not continue the upload.
	ErrInvalid = errors.New("blob upload invalid")
	// ErrDigestInvalid: the bytes received do not hash to the digest given,
	// or the digest's algorithm is not supported.
	ErrDigestInvalid = errors.New("digest invalid")
	// ErrSizeInvalid: the body was shorter or longer than announced.
	ErrSizeInvalid = errors.New("size invalid")
	// ErrTooMany: opening a session would pass a cap of Limits. The
	// client may retry once its (or everyone's) sessions finish.
	ErrTooMany = errors.New("too many upload sessions open")
	// ErrStoreUnavailable: the shared store that holds the sessions
	// (Options.Shared) did not answer; nothing was acknowledged, and the
	// client may retry once it answers again.
	ErrStoreUnavailable = errors.New("the store holding upload sessions is unavailable")
	// ErrBusy: a chunk waited too long for memory to stream through
	// (buffers.go); nothing was acknowledged, and the client may retry.
	ErrBusy = errors.New("too many chunks streaming at once")
)

// RangeError is ErrInvalid for a chunk that does not start where the
// upload ends: the client learns Size, the bytes the upload holds.
type RangeError struct{ Size int64 }

func (e *RangeError) Error() string {
	return fmt.Sprintf("chunk does not continue the upload at byte %d", e.Size)
}

// Unwrap makes a RangeError an ErrInvalid.
func (e *RangeError) Unwrap() error { return ErrInvalid }
