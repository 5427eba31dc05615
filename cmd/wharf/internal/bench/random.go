package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"

	"github.com/opencontainers/go-digest"
)

// layerSeed identifies one generated layer: the run's seed, the client,
// the client's push number and the layer's index. Distinct seeds give
// unrelated streams, so no two pushed layers share a digest.
type layerSeed [4]uint64

// randomLayer returns size bytes of ChaCha8 output for seed. It is
// incompressible, as real compressed layers are, and costs no memory: the
// same seed yields the same bytes again, which is how a monolithic upload
// learns its digest before it sends them.
func randomLayer(seed layerSeed, size int64) io.Reader {
	var key [32]byte
	for i, v := range seed {
		binary.LittleEndian.PutUint64(key[i*8:], v)
	}
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// layerDigest hashes the layer seed would generate.
func layerDigest(seed layerSeed, size int64, buf []byte) (digest.Digest, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, randomLayer(seed, size), buf); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// countingReader adds what passes through it to the shared byte counter,
// so the progress line moves during long uploads.
type countingReader struct {
	r   io.Reader
	ctr *counters
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.ctr.bytes.Add(int64(n))
	return n, err
}
