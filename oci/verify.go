package oci

import (
	"context"
	_ "crypto/sha256" // the digests the OCI spec names: sha256,
	_ "crypto/sha512" // and sha512, which it allows for pushes
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// What a Verifier finds when bytes are not the content a descriptor
// names. Whose fault that is (a client's: 400; an upstream's: 502; the
// disk's: corrupt) is for the caller to say: WrapMismatch.
var (
	ErrDigestMismatch = errors.New("content does not hash to its digest")
	ErrSizeMismatch   = errors.New("content is not the size its descriptor says")
)

// MismatchError is a Verifier's verdict against the bytes: more or fewer
// than Size, or hashing to Got instead of Want. It wraps ErrSizeMismatch
// or ErrDigestMismatch.
type MismatchError struct {
	Want digest.Digest
	Got  digest.Digest // "" when the size was wrong (the hash is then moot)
	Size int64         // the size promised, -1 when none was
	N    int64         // the bytes seen when the verdict was given
}

func (e *MismatchError) Error() string {
	switch {
	case e.Got != "":
		return fmt.Sprintf("%s: the bytes hash to %s: %v", e.Want, e.Got, ErrDigestMismatch)
	case e.N > e.Size:
		return fmt.Sprintf("%s: more than the %d bytes promised: %v", e.Want, e.Size, ErrSizeMismatch)
	}
	return fmt.Sprintf("%s: %d bytes, want %d: %v", e.Want, e.N, e.Size, ErrSizeMismatch)
}

func (e *MismatchError) Unwrap() error {
	if e.Got != "" {
		return ErrDigestMismatch
	}
	return ErrSizeMismatch
}

// WrapMismatch adds the caller's sentinel to a mismatch, digestErr or
// sizeErr, so that the layer above classifies it as this caller's kind of
// failure; any other error (nil included) is returned as it is.
func WrapMismatch(err, digestErr, sizeErr error) error {
	switch {
	case errors.Is(err, ErrSizeMismatch):
		return fmt.Errorf("%w: %w", err, sizeErr)
	case errors.Is(err, ErrDigestMismatch):
		return fmt.Errorf("%w: %w", err, digestErr)
	}
	return err
}

// Verifier is "verified before visible" in one type: it hashes the bytes
// written to it and, at the end, Verify says whether they were exactly
// the content want names. As a writer it is the tee beside a temp file
// that followers read while it grows (the fill, uploads, import); wrapped
// in a VerifyingReader it is the check on a stream read to its end.
// A write that takes the bytes past size fails at once, so a source that
// sends too much is cut off rather than read on.
type Verifier struct {
	want digest.Digest
	size int64
	h    hash.Hash
	n    int64
}

// NewVerifier checks bytes against want and size (-1: any size). want
// must be a valid digest of an available algorithm: an empty one is an
// error, not a size-only check, so that a digest lost on the way can never
// let unhashed bytes through (NewSizeReader is the size-only check, by
// name).
func NewVerifier(want digest.Digest, size int64) (*Verifier, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("verify %q: %w", want, err)
	}
	return &Verifier{want: want, size: size, h: want.Algorithm().Hash()}, nil
}

// Write hashes p; it fails only when p takes the bytes past the size.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.size >= 0 && v.n+int64(len(p)) > v.size {
		return 0, &MismatchError{Want: v.want, Size: v.size, N: v.n + int64(len(p))}
	}
	if v.h != nil {
		v.h.Write(p)
	}
	v.n += int64(len(p))
	return len(p), nil
}

// Written is how many bytes were hashed.
func (v *Verifier) Written() int64 { return v.n }

// Verify is the verdict on everything written: nil, or a *MismatchError.
func (v *Verifier) Verify() error {
	if v.size >= 0 && v.n != v.size {
		return &MismatchError{Want: v.want, Size: v.size, N: v.n}
	}
	if v.h == nil {
		return nil
	}
	if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
		return &MismatchError{Want: v.want, Got: got, Size: v.size, N: v.n}
	}
	return nil
}

// VerifyBytes is the verdict on content held whole (a manifest, never
// a blob): nil when b is the content want names, else a *MismatchError.
func VerifyBytes(b []byte, want digest.Digest) error {
	v, err := NewVerifier(want, -1)
	if err != nil {
		return err
	}
	v.Write(b)
	return v.Verify()
}

// ManifestDigest is the digest a manifest (or other small content held
// whole, such as docker save's config) is known by: want, once the body
// is verified against it, or the body's sha256 when no digest was named
// (a push or an import by tag).
func ManifestDigest(body []byte, want digest.Digest) (digest.Digest, error) {
	if want == "" {
		return digest.Canonical.FromBytes(body), nil
	}
	if err := VerifyBytes(body, want); err != nil {
		return "", err
	}
	return want, nil
}

// VerifyingReader reads through to a source, hashing as it goes, and in
// place of io.EOF returns the Verifier's verdict when it is not nil (as
// go-containerregistry's verify.ReadCloser): a caller that reads to EOF
// has verified, one that stops early has not claimed to. More bytes than
// the size fail as soon as they arrive.
type VerifyingReader struct {
	r io.Reader
	v *Verifier
}

// NewVerifyingReader returns a reader of r that checks want and size
// (-1: any size).
func NewVerifyingReader(r io.Reader, want digest.Digest, size int64) (*VerifyingReader, error) {
	v, err := NewVerifier(want, size)
	if err != nil {
		return nil, err
	}
	return &VerifyingReader{r: r, v: v}, nil
}

// NewVerifyingReaderContext is NewVerifyingReader that also ends with
// ctx's error once ctx is done, checked before each read: a long copy (an
// import the operator interrupts, a promotion the tier's Close stops)
// ends between two reads rather than after the whole content.
func NewVerifyingReaderContext(ctx context.Context, r io.Reader, want digest.Digest, size int64) (*VerifyingReader, error) {
	return NewVerifyingReader(ctxReader{ctx, r}, want, size)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// NewSizeReader reads r checking its size alone, nothing hashed: for
// measuring a server without the client's hashing in the way (the bench
// client's --no-verify), never for deciding what to keep.
func NewSizeReader(r io.Reader, size int64) *VerifyingReader {
	return &VerifyingReader{r: r, v: &Verifier{size: size}}
}

func (vr *VerifyingReader) Read(p []byte) (int, error) {
	n, err := vr.r.Read(p)
	if n > 0 {
		if _, werr := vr.v.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	if err == io.EOF {
		if verr := vr.v.Verify(); verr != nil {
			return n, verr
		}
	}
	return n, err
}

// Written is how many bytes were read through.
func (vr *VerifyingReader) Written() int64 { return vr.v.Written() }
