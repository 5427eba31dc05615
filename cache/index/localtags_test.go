package index

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestLocalTagsRoundTripMoveAndList: a pushed tag reads back as written,
// a push over it moves it, and the list is sorted and the repository's
// own.
func TestLocalTagsRoundTripMoveAndList(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/site/app"
	rec := func(s string, sec int64) TagRecord {
		return TagRecord{Digest: digest.FromString(s), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(s)), Checked: at(sec)}
	}
	puts := []struct {
		repo, tag string
		r         TagRecord
	}{
		{repo, "v2", rec("v2", 1)},
		{repo, "latest", rec("first", 2)},
		{repo, "v1", rec("v1", 3)},
		{repo, "latest", rec("second", 4)}, // moved
		{repo + "/sub", "other", rec("sub", 5)},
		{repo + "x", "other", rec("x", 6)},
	}
	for _, p := range puts {
		if err := x.PutLocalTag(p.repo, p.tag, p.r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := x.LocalTag(repo, "latest"); err != nil || got != rec("second", 4) {
		t.Errorf("LocalTag latest: %+v, %v; want the second push", got, err)
	}
	if got, err := x.LocalTags(repo); err != nil || !reflect.DeepEqual(got, []string{"latest", "v1", "v2"}) {
		t.Errorf("LocalTags: %q, %v; want [latest v1 v2]", got, err)
	}
	// Pushed and mirrored tags are apart: a mirrored record never
	// answers for a pushed one, nor the other way round.
	if _, err := x.Tag(repo, "latest", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("a pushed tag answered as mirrored: %v", err)
	}
	if err := x.PutTag("docker.io/mirror/only", "latest", "", rec("m", 7)); err != nil {
		t.Fatal(err)
	}
	if _, err := x.LocalTag("docker.io/mirror/only", "latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a mirrored tag answered as pushed: %v", err)
	}
}

// TestLocalTagsFoundAfterReopen: whether a repository has pushed tags is
// answered from memory, which Open rebuilds; without that, every pushed
// tag would vanish at restart behind the upstream's.
func TestLocalTagsFoundAfterReopen(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	want := TagRecord{Digest: digest.FromString("pushed"), Checked: at(1)}
	for _, repo := range []string{"docker.io/a", "ghcr.io/b"} {
		if err := x.PutLocalTag(repo, "v1", want); err != nil {
			t.Fatal(err)
		}
	}
	x = reopen(t, x, dir)
	for _, repo := range []string{"docker.io/a", "ghcr.io/b"} {
		if got, err := x.LocalTag(repo, "v1"); err != nil || got != want {
			t.Errorf("LocalTag %s:v1 after reopen: %+v, %v; want %+v", repo, got, err, want)
		}
	}
}

// TestDeleteLocalTagKeepsTheCount: the in-memory count of pushed tags
// follows every sequence of pushes and deletes (overwrites, deletes of
// tags never pushed); a count that fell to zero too early would hide the
// repository's other pushed tags.
func TestDeleteLocalTagKeepsTheCount(t *testing.T) {
	const repo = "docker.io/site/app"
	r := TagRecord{Digest: digest.FromString("m")}
	type step struct {
		push bool
		tag  string
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]bool // tag: still pushed
	}{
		{"delete one of two", []step{{true, "a"}, {true, "b"}, {false, "a"}}, map[string]bool{"a": false, "b": true}},
		{"pushed twice, deleted once", []step{{true, "a"}, {true, "a"}, {true, "b"}, {false, "a"}}, map[string]bool{"a": false, "b": true}},
		{"delete of a tag never pushed", []step{{true, "a"}, {false, "zz"}, {false, "zz"}}, map[string]bool{"a": true}},
		{"deleted twice", []step{{true, "a"}, {true, "b"}, {false, "a"}, {false, "a"}}, map[string]bool{"a": false, "b": true}},
		{"all gone, then pushed again", []step{{true, "a"}, {false, "a"}, {true, "b"}}, map[string]bool{"a": false, "b": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			x := mustOpen(t, dir)
			for _, s := range tt.steps {
				var err error
				if s.push {
					err = x.PutLocalTag(repo, s.tag, r)
				} else {
					err = x.DeleteLocalTag(repo, s.tag)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string) {
				for tag, pushed := range tt.want {
					_, err := x.LocalTag(repo, tag)
					if pushed && err != nil {
						t.Errorf("%s: LocalTag %s: %v, want it found", when, tag, err)
					}
					if !pushed && !errors.Is(err, ErrNotFound) {
						t.Errorf("%s: LocalTag %s: %v, want ErrNotFound", when, tag, err)
					}
				}
			}
			check("before reopen")
			x = reopen(t, x, dir)
			check("after reopen")
		})
	}
}
