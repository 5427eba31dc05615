package cache

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
)

// TestSharedKeysStayInTheirRepository: the record keys of hostile
// repository names and tags are refused or stay under their own
// repository's prefixes, and never under another's.
func TestSharedKeysStayInTheirRepository(t *testing.T) {
	d := digest.FromString("x")
	team := Repo{Upstream: "docker.io", Path: "team/a"}
	for _, tt := range []struct {
		name string
		repo Repo
		tag  string
		ok   bool
	}{
		{"plain", team, "v1", true},
		{"nested", Repo{"docker.io", "team/a/b"}, "v1", true},
		{"a component like a kind", Repo{"docker.io", "team/a/_tags"}, "v1", true},
		{"dot dot in the path", Repo{"docker.io", "team/../../tags"}, "v1", true},
		{"escaped slash in the path", Repo{"docker.io", "team%2Fa"}, "v1", true},
		{"slash in the upstream", Repo{"docker.io/team", "a"}, "v1", true},
		{"dot dot upstream", Repo{"..", "a"}, "v1", false},
		{"dot dot path", Repo{"docker.io", ".."}, "v1", false},
		{"no upstream", Repo{"", "team/a"}, "v1", false},
		{"no path", Repo{"docker.io", ""}, "v1", false},
		{"slash in the tag", team, "a/b", false},
		{"dot dot tag", team, "..", false},
		{"empty tag", team, "", false},
		{"control character", Repo{"docker.io", "team/\x00a"}, "v1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkSharedKeys(t, tt.repo, tt.tag, d, tt.ok)
		})
	}
}

// checkSharedKeys builds repo's keys for tag and d: when ok they must
// exist, pass records.CheckKey, sit under repo's own prefixes and parse
// back to repo (and tag, and d); otherwise a builder refuses them. No key
// of repo may sit under team/a's tag prefix unless repo is team/a.
func checkSharedKeys(t *testing.T, repo Repo, tag string, d digest.Digest, ok bool) {
	t.Helper()
	tagKey, err1 := sharedTagKey(repo, tag)
	linkKey, err2 := sharedLinkKey(repo, d)
	mirrorKey, err3 := sharedMirrorKey(repo, tag, "application/x")
	if !ok {
		if err1 == nil && err3 == nil {
			t.Fatalf("%q:%q: keys %q, %q built; want refused", repo, tag, tagKey, mirrorKey)
		}
		return
	}
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("%q:%q: %v, %v, %v", repo, tag, err1, err2, err3)
	}
	tagsPrefix, _ := sharedTagsPrefix(repo)
	mirrorPrefix, _ := sharedMirrorPrefix(repo, tag)
	holders, _ := sharedHoldersPrefix(d)
	for _, k := range []struct{ key, prefix string }{{tagKey, tagsPrefix}, {linkKey, holders}, {mirrorKey, mirrorPrefix}} {
		if err := records.CheckKey(k.key); err != nil {
			t.Errorf("%q: %v", k.key, err)
		}
		if !strings.HasPrefix(k.key, k.prefix) {
			t.Errorf("%q is not under %q", k.key, k.prefix)
		}
		got, parsed := parseSharedKey(k.key)
		if !parsed || got.repo != repo || got.kind != sharedLinksDir && got.tag != tag || got.kind == sharedLinksDir && got.digest != d {
			t.Errorf("%q parses as %+v (%v); want %q, %q, %s", k.key, got, parsed, repo, tag, d)
		}
	}
	team := Repo{Upstream: "docker.io", Path: "team/a"}
	teamTags, _ := sharedTagsPrefix(team)
	if repo != team && strings.HasPrefix(tagKey, teamTags) {
		t.Errorf("%q's tag key %q is under %q's prefix %q", repo, tagKey, team, teamTags)
	}
}

func FuzzSharedKeys(f *testing.F) {
	f.Add("docker.io", "team/a", "v1")
	f.Add("docker.io", "team/a/_tags", "v1")
	f.Add("..", "../a", "a/b")
	f.Add("docker.io", "team%2Fa", "..")
	f.Fuzz(func(t *testing.T, up, path, tag string) {
		repo := Repo{Upstream: up, Path: path}
		_, err := sharedTagKey(repo, tag)
		if err != nil {
			return // refused: no key at all
		}
		checkSharedKeys(t, repo, tag, digest.FromString(tag), true)
	})
}
