package records

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// listed is a Store whose List walks keys in order; the rest is unused.
type listed struct {
	Store
	keys []string
	err  error // returned after the keys
	seen *int
}

func (l listed) List(_ context.Context, prefix string, fn func(string) error) error {
	for _, k := range l.keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		*l.seen++
		if err := fn(k); err != nil {
			return err
		}
	}
	return l.err
}

// TestFirstStopsAtTheMatch: First returns the first key match accepts and
// lists no further; no match is "", and a listing's or match's error is
// returned as is.
func TestFirstStopsAtTheMatch(t *testing.T) {
	ctx := context.Background()
	var seen int
	s := listed{keys: []string{"a/1", "a/2", "a/3", "b/1"}, seen: &seen}
	k, err := First(ctx, s, "a/", func(k string) (bool, error) { return k == "a/2", nil })
	if k != "a/2" || err != nil || seen != 2 {
		t.Fatalf("First: %q, %v after %d keys; want a/2, nil after 2", k, err, seen)
	}
	if any, err := Any(ctx, s, "c/"); any || err != nil {
		t.Fatalf("Any of an empty prefix: %v, %v", any, err)
	}
	seen = 0
	if any, err := Any(ctx, s, "a/"); !any || err != nil || seen != 1 {
		t.Fatalf("Any: %v, %v after %d keys; want true after 1", any, err, seen)
	}
	boom := errors.New("boom")
	if _, err := Any(ctx, listed{err: boom, seen: &seen}, "a/"); !errors.Is(err, boom) {
		t.Fatalf("a failed listing: %v, want boom", err)
	}
	if k, err := First(ctx, s, "a/", func(string) (bool, error) { return false, boom }); k != "" || !errors.Is(err, boom) {
		t.Fatalf("a failed match: %q, %v, want boom", k, err)
	}
}
