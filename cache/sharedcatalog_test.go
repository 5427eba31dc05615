package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/records"
)

// The keys the cluster's catalog and pins read stay in their repository:
// a mirrored/ key parses back to its repository alone, and the listing of
// a repository's mirrored tags (a pin without a tag) holds its own tags'
// records and never another repository's, whatever the names.
func TestMirroredKeysStayInTheirRepository(t *testing.T) {
	team := Repo{Upstream: "docker.io", Path: "team/a"}
	teamTag := mustKey(sharedMirrorKey(team, "v1", "application/x"))
	for _, repo := range []Repo{
		team,
		{"docker.io", "team/a/b"},
		{"docker.io", "team%2Fa"},
		{"docker.io/team", "a"},
		{"docker.io", "team/a/v1"},
		{"docker.io", "team/../../mirror"},
	} {
		key, err := sharedMirroredKey(repo)
		if err != nil {
			t.Fatalf("%q: %v", repo, err)
		}
		if err := records.CheckKey(key); err != nil || !strings.HasPrefix(key, sharedMirroredDir) {
			t.Errorf("%q: key %q (%v)", repo, key, err)
		}
		if got, ok := parseRepoKey(sharedMirroredDir, key); !ok || got != repo {
			t.Errorf("%q parses as %q (%v)", key, got, ok)
		}
		if _, ok := parseRepoKey(sharedReposDir, key); ok {
			t.Errorf("%q parses under %s", key, sharedReposDir)
		}
		prefix := mustKey(sharedMirrorRepoPrefix(repo))
		if own := mustKey(sharedMirrorKey(repo, "v1", "application/x")); !strings.HasPrefix(own, prefix) {
			t.Errorf("%q's tag record %q is not under its prefix %q", repo, own, prefix)
		}
		if repo != team && strings.HasPrefix(teamTag, prefix) {
			t.Errorf("%q's prefix %q holds %q's tag record %q", repo, prefix, team, teamTag)
		}
	}
	for _, bad := range []Repo{{"", "a"}, {"docker.io", ""}, {"..", "a"}} {
		if k, err := sharedMirroredKey(bad); err == nil {
			t.Errorf("%q: key %q built; want refused", bad, k)
		}
	}
}

// A replica writes a repository's mirrored/ record once per
// mirroredAgain, again after the write failed or was dropped, and its
// memory of them is bounded.
func TestMirroredRecordOncePerRepository(t *testing.T) {
	var m mirroredRepos
	repo := Repo{Upstream: "docker.io", Path: "team/a"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !m.first(repo, now) || m.first(repo, now.Add(mirroredAgain-time.Second)) {
		t.Fatal("want the first record of a repository written, the next not")
	}
	m.forget(repo) // the write failed
	if !m.first(repo, now) {
		t.Error("a failed write is not tried again")
	}
	if !m.first(repo, now.Add(mirroredAgain)) {
		t.Error("the record is not written again once mirroredAgain passed (gc may have deleted it)")
	}
	for i := range sharedPending + 1 {
		m.first(Repo{Upstream: "docker.io", Path: strings.Repeat("a", i+1)}, now)
	}
	if len(m.seen) > sharedPending {
		t.Errorf("%d repositories remembered, more than %d", len(m.seen), sharedPending)
	}
}
