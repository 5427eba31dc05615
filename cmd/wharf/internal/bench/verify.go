package bench

import (
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/oci"
)

// ErrDigestMismatch and ErrSizeMismatch are what a verifying reader returns
// when the bytes are not what the descriptor promised: oci's, since the
// bench client checks content as wharf itself does. errors.Is finds them
// through the wrapping that names the digest.
var (
	ErrDigestMismatch = oci.ErrDigestMismatch
	ErrSizeMismatch   = oci.ErrSizeMismatch
)

// newVerifier returns a reader of r checking want and size (-1 when the
// size is unknown): oci.VerifyingReader, which fails as soon as there are
// more bytes than size, so a server that sends too much cannot make the
// client read forever. With check false it only counts, for measuring a
// server's ceiling without the client's hashing in the way; the size is
// still checked.
func newVerifier(r io.Reader, want digest.Digest, size int64, check bool) (*oci.VerifyingReader, error) {
	if !check {
		return oci.NewSizeReader(r, size), nil
	}
	return oci.NewVerifyingReader(r, want, size)
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
