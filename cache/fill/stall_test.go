package fill_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/fill"
)

// stallOptions give up a body after 50ms of silence, resuming once.
func stallOptions(o *fill.Options) { o.StallTimeout, o.Resumes = 50*time.Millisecond, 1 }

// waitErr is how the fill of fw ended.
func waitErr(t *testing.T, fw *fill.Follower) error {
	t.Helper()
	defer fw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return fw.Wait(ctx)
}

// TestStreamFillStallIsErrStalled: a stream fill whose upstream goes
// silent for good ends with ErrStalled (proxy and peer match it).
func TestStreamFillStallIsErrStalled(t *testing.T) {
	sg := newSegGroup(t, stallOptions)
	blob, d := randomBlob(t, 100_000)
	src := &source{blob: blob, gate: make(chan struct{})} // never opened
	fw, err := sg.Join(d, src.open)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fw); !errors.Is(err, fill.ErrStalled) {
		t.Errorf("fill ended with %v, want ErrStalled", err)
	}
}

// TestSegmentedFillStallIsErrStalled: a segment whose upstream goes
// silent for good fails the fill with ErrStalled.
func TestSegmentedFillStallIsErrStalled(t *testing.T) {
	sg := newSegGroup(t, stallOptions)
	blob, d := randomBlob(t, 4*segThreshold)
	ranged := func(ctx context.Context, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
		var r io.Reader = bytes.NewReader(blob[offset : offset+length])
		if offset >= 3*segThreshold {
			r = &gated{r: r, gate: make(chan struct{}), after: 1000, ctx: ctx} // never opened
		}
		return io.NopCloser(r), int64(len(blob)), false, nil
	}
	fw, _, err := sg.StartRanged(d, (&source{blob: blob}).open, ranged)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fw); !errors.Is(err, fill.ErrStalled) {
		t.Errorf("fill ended with %v, want ErrStalled", err)
	}
}
