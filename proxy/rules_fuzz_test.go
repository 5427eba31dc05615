package proxy

import (
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/cache"
)

// FuzzRules: a rule grants a repository only under its prefix, by whole
// components ("ghcr.io/acme" never covers "ghcr.io/acme-corp"), only to
// the user it names (or every user with credentials for "*", never the
// anonymous client), and write only when it says
// write; write access always includes read; adding a rule never takes
// access away.
func FuzzRules(f *testing.F) {
	f.Add("alice", "alice", "ghcr.io/acme", true, "ghcr.io", "acme/app", false)
	f.Add("alice", "*", "docker.io/library/", false, "docker.io", "library/alpine", true)
	f.Add("bob", "alice", "", true, "docker.io", "x", false)
	f.Add("alice", "alice", "ghcr.io/acme", true, "ghcr.io", "acme-corp/app", false)
	f.Add("alice", "alice", "ghcr.io/acme", true, "ghcr.io", "acme", true)
	f.Add("Alice", "alice", "docker.io", false, "docker.io", "a/b", false)
	f.Add(Anonymous, "*", "", false, "docker.io", "library/alpine", false)
	f.Add(Anonymous, Anonymous, "docker.io/library", false, "docker.io", "library/alpine", false)
	f.Fuzz(func(t *testing.T, user, ruleUser, prefix string, ruleWrite bool, upstream, repoPath string, write bool) {
		repo := cache.Repo{Upstream: upstream, Path: repoPath}
		rule := Rule{User: ruleUser, Prefix: prefix, Write: ruleWrite}
		one := newRules([]Rule{rule})
		if !one.grants(user, repo, write) {
			return
		}
		name, p := repo.String(), strings.TrimRight(prefix, "/")
		switch {
		case ruleUser != "*" && ruleUser != user:
			t.Fatalf("rule for %q grants user %q", ruleUser, user)
		case ruleUser == "*" && user == Anonymous:
			t.Fatalf("a rule for every user grants the anonymous client")
		case write && !ruleWrite:
			t.Fatalf("a read rule grants write")
		case p != "" && name != p && !strings.HasPrefix(name, p+"/"):
			t.Fatalf("prefix %q grants %q", prefix, name)
		case !one.grants(user, repo, false):
			t.Fatalf("write granted without read")
		}
		other := Rule{User: user, Prefix: "zz/" + repoPath, Write: !ruleWrite}
		if !newRules([]Rule{other, rule}).grants(user, repo, write) || !newRules([]Rule{rule, other}).grants(user, repo, write) {
			t.Fatalf("adding a rule took access away")
		}
	})
}
