package bench

import (
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// ErrDigestMismatch and ErrSizeMismatch are what a verifying reader returns
// when the bytes are not what the descriptor promised. errors.Is finds them
// through the wrapping that names the digest.
var (
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrSizeMismatch   = errors.New("size mismatch")
)

// verifier reads through to r, hashing as it goes, and fails rather than
// return io.EOF when the bytes do not hash to want or their number is not
// size. It fails as soon as there are more bytes than size, so a server that
// sends too much cannot make the client read forever. Like go-containerregistry's
// verify.ReadCloser, the check is the reader: a caller that reads to EOF has
// verified, and one that stops early has not claimed to.
type verifier struct {
	r    io.Reader
	want digest.Digest
	size int64 // -1: unknown
	h    hash.Hash
	n    int64
}

// newVerifier returns a reader of r checking want and size (-1 when the
// size is unknown). With check false it only counts, for measuring a
// server's ceiling without the client's hashing in the way; the size is
// still checked.
func newVerifier(r io.Reader, want digest.Digest, size int64, check bool) (*verifier, error) {
	v := &verifier{r: r, want: want, size: size}
	if check {
		if err := want.Validate(); err != nil {
			return nil, fmt.Errorf("verify %q: %w", want, err)
		}
		v.h = want.Algorithm().Hash()
	}
	return v, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if n > 0 {
		if v.h != nil {
			v.h.Write(p[:n])
		}
		v.n += int64(n)
		if v.size >= 0 && v.n > v.size {
			return n, fmt.Errorf("%w: %s: more than %d bytes", ErrSizeMismatch, v.want, v.size)
		}
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%w: %s: got %d bytes, want %d", ErrSizeMismatch, v.want, v.n, v.size)
		}
		if v.h != nil {
			if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
				return n, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, v.want)
			}
		}
	}
	return n, err
}

// drain reads r to EOF through buf and returns how many bytes it read,
// calling count after every read so progress can be shown while a large
// blob is still arriving.
func drain(r io.Reader, buf []byte, count func(int)) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			count(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
