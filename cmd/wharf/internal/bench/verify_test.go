package bench

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

// TestVerifier tests what the bench client adds to oci's verifying
// reader (tested in oci): --no-verify drops the digest but keeps the
// size, and drain counts every byte as it arrives.
func TestVerifier(t *testing.T) {
	good := []byte("the bytes the descriptor promised")
	d := digest.FromBytes(good)
	flipped := bytes.Clone(good)
	flipped[0] ^= 1
	tests := []struct {
		name  string
		body  []byte
		check bool
		want  error
	}{
		{"right bytes", good, true, nil},
		{"wrong bytes", flipped, true, ErrDigestMismatch},
		{"no-verify passes wrong bytes", flipped, false, nil},
		{"no-verify still checks the size", good[:10], false, ErrSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(iotest.HalfReader(bytes.NewReader(tt.body)), d, int64(len(good)), tt.check)
			if err != nil {
				t.Fatal(err)
			}
			counted := 0
			n, err := drain(v, make([]byte, 7), func(k int) { counted += k })
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if counted != int(n) || tt.want == nil && n != int64(len(tt.body)) {
				t.Errorf("read %d bytes, counted %d, want %d", n, counted, len(tt.body))
			}
		})
	}
}
