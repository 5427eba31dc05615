package tier_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/wharf-mirror/wharf/cache/tier"
)

// A shared tier that does not answer is told apart from one that lacks
// the content: the first is an *UnavailableError (the cache's 503), the
// second stays fs.ErrNotExist (the cache's miss). A local copy is served
// either way.
func TestSharedUnavailableIsNotAMiss(t *testing.T) {
	r := newRig(t, tier.Options{LocalMaxSize: 1 << 20})
	b, held := content(t, 1000)
	putIn(t, r, b, held)
	_, missing := content(t, 1000)

	if _, err := r.Open(ctx, missing); !errors.Is(err, fs.ErrNotExist) || isUnavailable(err) {
		t.Fatalf("Open of content the shared tier lacks: %v, want a plain miss", err)
	}
	r.shared.down = errors.New("connection refused")
	for op, err := range map[string]error{
		"open": func() error { _, err := r.Open(ctx, missing); return err }(),
		"stat": func() error { _, err := r.Stat(ctx, missing); return err }(),
	} {
		if !isUnavailable(err) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s with the shared tier down: %v, want an UnavailableError", op, err)
		}
	}
	c, err := r.Open(ctx, held)
	if err != nil {
		t.Fatalf("Open of a local copy with the shared tier down: %v", err)
	}
	c.Close()
	if _, ok := c.(*os.File); !ok {
		t.Errorf("a local copy opened as %T, want *os.File", c)
	}
}

func isUnavailable(err error) bool {
	var u *tier.UnavailableError
	return errors.As(err, &u) && u.StoreUnavailable()
}
