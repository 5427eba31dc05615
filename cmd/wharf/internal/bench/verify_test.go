package bench

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

func TestVerifier(t *testing.T) {
	good := []byte("the bytes the descriptor promised")
	d := digest.FromBytes(good)
	flipped := bytes.Clone(good)
	flipped[0] ^= 1
	tests := []struct {
		name  string
		body  []byte
		size  int64
		check bool
		want  error
	}{
		{"right bytes", good, int64(len(good)), true, nil},
		{"unknown size", good, -1, true, nil},
		{"wrong bytes, same length", flipped, int64(len(good)), true, ErrDigestMismatch},
		{"wrong bytes, unknown size", flipped, -1, true, ErrDigestMismatch},
		{"too short", good[:10], int64(len(good)), true, ErrSizeMismatch},
		{"too long", append(bytes.Clone(good), 'x'), int64(len(good)), true, ErrSizeMismatch},
		{"no-verify passes wrong bytes", flipped, int64(len(good)), false, nil},
		{"no-verify still checks the size", good[:10], int64(len(good)), false, ErrSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(iotest.HalfReader(bytes.NewReader(tt.body)), d, tt.size, tt.check)
			if err != nil {
				t.Fatal(err)
			}
			n, err := drain(v, make([]byte, 7), func(int) {})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want == nil && n != int64(len(tt.body)) {
				t.Errorf("read %d bytes, want %d", n, len(tt.body))
			}
		})
	}
}

// A server that keeps sending past the size must be stopped at once, not
// read to its end.
func TestVerifierStopsAnEndlessBody(t *testing.T) {
	v, err := newVerifier(endless{}, digest.FromString("x"), 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	n, err := drain(v, make([]byte, 64<<10), func(int) {})
	if !errors.Is(err, ErrSizeMismatch) || n > 1<<20+64<<10 {
		t.Fatalf("read %d bytes, err %v; want ErrSizeMismatch within a buffer of the size", n, err)
	}
}

func TestVerifierRefusesABadDigest(t *testing.T) {
	if _, err := newVerifier(bytes.NewReader(nil), "sha256:short", 0, true); err == nil {
		t.Fatal("want an error for an invalid digest")
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

var _ io.Reader = endless{}
