package cache

import (
	"errors"
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
		{"a path like a referrer's", Repo{"docker.io", "team/a/sha256/" + d.Encoded()}, "v1", true},
		{"a path like a digest", Repo{"docker.io", "team/a/sha256:" + d.Encoded()}, "v1", true},
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
	subject := digest.FromString("subject")
	refKey, err4 := sharedReferrerKey(repo, subject, d)
	repoKey, err5 := sharedRepoKey(repo)
	if !ok {
		if err1 == nil && err3 == nil {
			t.Fatalf("%q:%q: keys %q, %q built; want refused", repo, tag, tagKey, mirrorKey)
		}
		return
	}
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		t.Fatalf("%q:%q: %v", repo, tag, err)
	}
	tagsPrefix, _ := sharedTagsPrefix(repo)
	mirrorPrefix, _ := sharedMirrorPrefix(repo, tag)
	holders, _ := sharedHoldersPrefix(d)
	refPrefix, _ := sharedReferrersPrefix(repo, subject)
	for _, k := range []struct {
		key, prefix string
		want        sharedKey
	}{
		{tagKey, tagsPrefix, sharedKey{kind: sharedTagsDir, repo: repo, tag: tag}},
		{linkKey, holders, sharedKey{kind: sharedLinksDir, repo: repo, digest: d}},
		{mirrorKey, mirrorPrefix, sharedKey{kind: sharedMirrorDir, repo: repo, tag: tag}},
		{refKey, refPrefix, sharedKey{kind: sharedRefersDir, repo: repo, digest: d, subject: subject}},
		{repoKey, sharedReposDir, sharedKey{kind: sharedReposDir, repo: repo}},
	} {
		if err := records.CheckKey(k.key); err != nil {
			t.Errorf("%q: %v", k.key, err)
		}
		if !strings.HasPrefix(k.key, k.prefix) {
			t.Errorf("%q is not under %q", k.key, k.prefix)
		}
		got, parsed := parseSharedKey(k.key)
		if !parsed || got != k.want {
			t.Errorf("%q parses as %+v (%v); want %+v", k.key, got, parsed, k.want)
		}
	}
	team := Repo{Upstream: "docker.io", Path: "team/a"}
	teamTags, _ := sharedTagsPrefix(team)
	teamRefs, _ := sharedReferrersPrefix(team, subject)
	if repo != team {
		for _, k := range []struct{ key, prefix string }{{tagKey, teamTags}, {refKey, teamRefs}} {
			if strings.HasPrefix(k.key, k.prefix) {
				t.Errorf("%q's key %q is under %q's prefix %q", repo, k.key, team, k.prefix)
			}
		}
		if repoKey == mustKey(sharedRepoKey(team)) {
			t.Errorf("%q's repository key is %q's", repo, team)
		}
	}
}

func mustKey(k string, err error) string {
	if err != nil {
		panic(err)
	}
	return k
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

// TestSharedEvictingAndAccessKeys: the handshake's and the reports' keys
// sit under their own directories, pass records.CheckKey, are never a
// kind the rebuild loads, and refuse what would make no key.
func TestSharedEvictingAndAccessKeys(t *testing.T) {
	d := digest.FromString("x")
	ev, err := sharedEvictingKey(d)
	if err != nil || ev != "evicting/sha256/"+d.Encoded() {
		t.Errorf("evicting key of %s = %q, %v", d, ev, err)
	}
	if _, err := sharedEvictingKey("sha256:../.."); err == nil {
		t.Error("an invalid digest made an evicting key")
	}
	for _, tt := range []struct {
		replica, want string
	}{
		{"10.0.0.1:5001", "access/10.0.0.1:5001"},
		{"wharf-0.wharf.default.svc:5001", "access/wharf-0.wharf.default.svc:5001"},
		{"a/../b", "access/a%2F..%2Fb"},
		{"..", ""},
		{"", ""},
	} {
		got, err := sharedAccessKey(tt.replica)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("access key of %q = %q, %v; want %q", tt.replica, got, err, tt.want)
		}
	}
	for _, k := range []string{ev, "access/10.0.0.1:5001"} {
		if err := records.CheckKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
		if _, ok := parseSharedKey(k); ok {
			t.Errorf("%q parses as a key the rebuild loads", k)
		}
	}
}
