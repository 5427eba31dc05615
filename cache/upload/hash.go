package upload

import (
	"crypto/sha256"
	_ "crypto/sha512" // sha512 digests, which the OCI spec allows for pushes
	"encoding"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
)

// The one place uploads hash. Chunks arrive in separate requests, so the
// running sha256 is carried between them in the session's record (its
// marshalled state); when that state is lost, or the client names a
// digest of another algorithm, the file is read again at the end.

// resumeHash returns the sha256 of the rec.Size bytes received so far;
// known is false when the record carries no usable state.
func resumeHash(rec index.UploadRecord) (h hash.Hash, known bool) {
	return resumeHashOf(rec.Size, rec.HashState)
}

// resumeHashOf is resumeHash of size bytes whose hash state is state.
func resumeHashOf(size int64, state []byte) (h hash.Hash, known bool) {
	h = sha256.New()
	if size == 0 {
		return h, true
	}
	if len(state) == 0 {
		return h, false
	}
	return h, h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) == nil
}

// hashState is h's state to keep in the record.
func hashState(h hash.Hash) []byte {
	b, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

// digestOf is the digest under d's algorithm of everything in f: from h,
// the running sha256 (nil when unknown), or by reading f from the start.
func digestOf(f *os.File, h hash.Hash, d digest.Digest) (digest.Digest, error) {
	if h != nil && d.Algorithm() == digest.SHA256 {
		return digest.NewDigest(digest.SHA256, h), nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	dg := d.Algorithm().Digester()
	if _, err := io.CopyBuffer(dg.Hash(), f, make([]byte, copyBuffer)); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return dg.Digest(), nil
}
