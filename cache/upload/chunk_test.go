package upload

import (
	"errors"
	"math"
	"testing"
)

// A Content-Range whose length overflows int64 is refused, not taken for
// a body of unknown length.
func TestCheckChunkRefusesOverflowingRange(t *testing.T) {
	for _, c := range []Chunk{
		{Start: 0, End: math.MaxInt64, Length: -1},
		{Start: 0, End: math.MaxInt64, Length: 3},
	} {
		if _, err := checkChunk(0, c); !errors.Is(err, ErrSizeInvalid) {
			t.Errorf("checkChunk(%d-%d, length %d) = %v, want ErrSizeInvalid", c.Start, c.End, c.Length, err)
		}
	}
	if got, err := checkChunk(0, Chunk{Start: 0, End: 2, Length: -1}); err != nil || got.Length != 3 {
		t.Errorf("bytes 0-2 = length %d, %v; want 3", got.Length, err)
	}
}
