package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// FuzzLoadYAML hands Load a fuzzed config file. Load never panics; a file
// with a key the settings table does not know is refused; and a file that
// loads, loads the same again (decoding and validation are functions of
// the bytes, and what validated still validates).
func FuzzLoadYAML(f *testing.F) {
	for _, p := range []string{"example.yaml", "../deploy/systemd/config.yaml", "../deploy/kubernetes/config.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"listen: \":6000\"\nstorage:\n  maxSize: 1GiB\n",
		"upstream:\n  url: https://ghcr.io\n  tagTTL: 1m\n",
		"upstreams:\n  - url: https://ghcr.io\n    name: ghcr.io\n",
		"lisen: :5000\n",
		"storage:\n  max_size: 1GiB\n",
		"a: &x\n  b: 1\nupstream: *x\n",
		"<<: {listen: ':1'}\n",
		"listen: 1\nlisten: 2\n",
		"--- \nlisten: ':1'\n---\nlisten: ':2'\n",
		"auth:\n  htpasswd: /nonexistent\n  rules: 'ci:write:docker.io/team'\n",
		"[1, 2]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	known := map[string]bool{} // leaves and the sections that hold them
	leaves := map[string]bool{}
	for _, s := range Settings() {
		if s.Path == "" {
			continue
		}
		leaves[s.Path] = true
		for i := range len(s.Path) {
			if s.Path[i] == '.' {
				known[s.Path[:i]] = true
			}
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(dir, "wharf.yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		load := func() (Config, error) {
			return LoadWith(LoadOptions{Args: []string{"--config", file}, Output: discard{}})
		}
		cfg, err := load()
		if err != nil {
			return
		}
		if bad := unknownKey(data, known, leaves); bad != "" {
			t.Fatalf("unknown key %q accepted", bad)
		}
		again, err := load()
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("loads differently the second time: %v", err)
		}
		if ps := cfg.problems(); len(ps) != 0 {
			t.Fatalf("a loaded config has problems: %v", ps[0])
		}
	})
}

// unknownKey returns the first key of data's mappings that is neither a
// setting nor a section of settings, "" if there is none (or data is not
// one YAML mapping).
func unknownKey(data []byte, sections, leaves map[string]bool) string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return ""
	}
	var walk func(n *yaml.Node, prefix string) string
	walk = func(n *yaml.Node, prefix string) string {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			return ""
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")
			switch {
			case leaves[path]:
			case sections[path]:
				if bad := walk(n.Content[i+1], path); bad != "" {
					return bad
				}
			default:
				return path
			}
		}
		return ""
	}
	return walk(doc.Content[0], "")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzParsedRules: rules either parse or are refused with an error, never
// a panic; every parsed rule names a user (no blanks) and a lower-case
// prefix without a leading or trailing "/" or a "*"; and the rules written
// back as "user:access:prefix" parse to the same.
func FuzzParsedRules(f *testing.F) {
	for _, s := range []string{
		"ci:write:docker.io/team/, *:read:*, ops:read:registry.local:5000/infra,dev:read:",
		"alice:read:ghcr.io/acme", "bob:admin:*", "a b:read:*", ":read:*", "x:read:Docker.io", "x:read:/abs", "x:read:a*b",
		"x:write", ",,,", "x:read:///",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := Auth{Rules: s}.ParsedRules()
		if err != nil {
			return
		}
		var back []string
		for _, r := range rules {
			if r.User == "" || strings.ContainsAny(r.User, " \t,:") {
				t.Fatalf("user %q accepted", r.User)
			}
			if strings.ToLower(r.Prefix) != r.Prefix || strings.HasPrefix(r.Prefix, "/") || strings.HasSuffix(r.Prefix, "/") || strings.Contains(r.Prefix, "*") || strings.IndexFunc(r.Prefix, unicode.IsSpace) >= 0 {
				t.Fatalf("prefix %q accepted", r.Prefix)
			}
			access, prefix := "read", r.Prefix
			if r.Write {
				access = "write"
			}
			if prefix == "" {
				prefix = "*"
			}
			back = append(back, r.User+":"+access+":"+prefix)
		}
		again, err := Auth{Rules: strings.Join(back, ",")}.ParsedRules()
		if err != nil || !reflect.DeepEqual(again, rules) {
			t.Fatalf("%q written back as %q parses to %+v, %v", s, strings.Join(back, ","), again, err)
		}
	})
}
