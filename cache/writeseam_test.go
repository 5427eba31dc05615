package cache

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestContentLeavesWithItsLastLink: invariant 7 across the write seam.
// Unlink takes d from one repository only; the file stays while another
// repository holds it and goes with the last link, and a second Unlink
// from the same repository is the 404 of a digest never held.
func TestContentLeavesWithItsLastLink(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	a, b := Repo{Upstream: "example.com", Path: "team/a"}, Repo{Upstream: "example.com", Path: "team/b"}
	body := randomBytes(1000)
	d := ingestBytes(t, c, body)
	for _, r := range []Repo{a, b} {
		if err := c.LinkUploaded(context.Background(), r, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Unlink(a, d); err != nil {
		t.Fatal(err)
	}
	if c.Holds(a, d) || !c.Holds(b, d) {
		t.Errorf("after unlinking from a: a holds %v, b holds %v; want false, true", c.Holds(a, d), c.Holds(b, d))
	}
	if _, ok := c.HasContent(d); !ok {
		t.Fatal("content removed while b still links it")
	}
	if err := c.Unlink(a, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("unlinking from a again: %v, want ErrNotFound", err)
	}
	if err := c.Unlink(b, d); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.HasContent(d); ok {
		t.Error("content kept after its last link went")
	}
}

// TestMountNeedsARepositoryThatHoldsIt: a mount links stored content only
// from a repository that holds it, or, with no source named, pinned
// content where the caller says no rules separate repositories; a
// digest alone (no origin to vouch for it) mounts nothing.
func TestMountNeedsARepositoryThatHoldsIt(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	ctx := context.Background()
	src, dst, other := Repo{Upstream: "example.com", Path: "src"}, Repo{Upstream: "example.com", Path: "dst"}, Repo{Upstream: "example.com", Path: "other"}
	body := randomBytes(1000)
	d := digest.FromBytes(body)
	if ok, err := c.Mount(ctx, dst, &src, true, d); ok || err != nil {
		t.Fatalf("mount of content not stored: %v, %v; want false", ok, err)
	}
	ingestBytes(t, c, body)
	if err := c.LinkUploaded(context.Background(), src, d); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		from      *Repo
		anyPinned bool
		want      bool
	}{
		{"from a repository that does not hold it", &other, true, false},
		{"by digest alone, rules separating repositories", nil, false, false},
		{"by digest alone, no rules", nil, true, true},
		{"from the repository that holds it", &src, false, true},
	} {
		to := Repo{Upstream: "example.com", Path: "to/" + tt.name}
		ok, err := c.Mount(ctx, to, tt.from, tt.anyPinned, d)
		if err != nil || ok != tt.want || c.Holds(to, d) != tt.want {
			t.Errorf("%s: mounted %v (%v), holds %v; want %v", tt.name, ok, err, c.Holds(to, d), tt.want)
		}
	}
}
