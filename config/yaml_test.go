package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestYAMLIsStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // every line of the error, after "FILE:"
	}{
		{"unknown top-level key", "listen: :5000\nlisten_addr: :6000\n",
			[]string{`2: unknown key "listen_addr"`}},
		{"unknown nested key with hint", "storage:\n  dir: /d\n  maxsize: 1GiB\n",
			[]string{`3: unknown key "storage.maxsize" (did you mean "storage.maxSize"?)`}},
		{"snake case hint", "upstream:\n  tag_ttl: 1m\n",
			[]string{`2: unknown key "upstream.tag_ttl" (did you mean "upstream.tagTTL"?)`}},
		{"section case hint", "Upstream:\n  url: https://x\n",
			[]string{`1: unknown key "Upstream" (did you mean "upstream"?)`}},
		{"leaf at the wrong level", "maxSize: 1GiB\n",
			[]string{`1: unknown key "maxSize"`}},
		{"nothing close", "compression: zstd\n",
			[]string{`1: unknown key "compression"`}},
		{"bad value names field and line", "\nstorage:\n  maxSize: 20XB\n",
			[]string{`3: storage.maxSize: "20XB" is not a size (use e.g. 512MiB, 20GiB)`}},
		{"bare integer duration", "upstream:\n  tagTTL: 300\n",
			[]string{`2: upstream.tagTTL: "300" has no unit (use e.g. 90s, 5m, 1h30m)`}},
		{"duplicate key", "listen: :1\nlisten: :2\n",
			[]string{"2: listen: set twice (first at line 1)"}},
		{"list for a value", "listen:\n  - :1\n",
			[]string{"1: listen: expected a single value, not a list or mapping"}},
		{"value for a section", "storage: /data\n",
			[]string{"1: storage: expected a mapping of settings (key: value)"}},
		{"not a mapping", "- listen\n",
			[]string{"1: top level: expected a mapping of settings (key: value)"}},
		{"merge key", "base: &b\n  dir: /d\nstorage:\n  <<: *b\n",
			[]string{`1: unknown key "base"`, "4: merge keys (<<) are not supported"}},
		{"two documents", "listen: :1\n---\nlisten: :2\n",
			[]string{"2: only one YAML document is allowed"}},
		{"every problem at once", "lisen: :1\nupstream:\n  retries: lots\n  timeout: 5\nstorage:\n  maxSize: big\n",
			[]string{
				`1: unknown key "lisen" (did you mean "listen"?)`,
				`3: upstream.retries: "lots" is not a whole number`,
				`4: upstream.timeout: "5" has no unit (use e.g. 90s, 5m, 1h30m)`,
				`6: storage.maxSize: "big" is not a size (use e.g. 512MiB, 20GiB)`,
			}},
	}
	for _, tt := range tests {
		p := writeFile(t, "wharf.yaml", tt.doc)
		_, err := Load([]string{"--config", p}, nil)
		if err == nil {
			t.Errorf("%s: Load = nil error, want %q", tt.name, tt.want)
			continue
		}
		want := make([]string, len(tt.want))
		for i, w := range tt.want {
			want[i] = p + ":" + w
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: error lines\n got %q\nwant %q", tt.name, got, want)
		}
	}
}

func TestYAMLAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want Config
	}{
		{"empty file", "", loaded(nil)},
		{"only comments", "# nothing here\n", loaded(nil)},
		{"empty section", "upstream:\nstorage: ~\n", loaded(nil)},
		{"null value keeps default", "listen:\nlog:\n  level: ~\n", loaded(nil)},
		{"quoted values", "listen: \":7000\"\nstorage:\n  maxSize: '1.5GB'\n", loaded(func(c *Config) {
			c.Listen, c.Storage.MaxSize = ":7000", 1_500_000_000
		})},
		{"integer size", "storage:\n  maxSize: 1048576\n", loaded(func(c *Config) { c.Storage.MaxSize = 1 << 20 })},
		{"anchors and aliases", "storage:\n  dir: &d /srv\nupstream:\n  username: *d\n  password: pw\n", loaded(func(c *Config) {
			c.Storage.Dir, c.Upstream.Username, c.Upstream.Password = "/srv", "/srv", "pw"
		})},
		{"numeric password is a string", "upstream:\n  username: me\n  password: 1234\n", loaded(func(c *Config) {
			c.Upstream.Username, c.Upstream.Password = "me", "1234"
		})},
		{"officialLibrary off for Docker Hub", "upstream:\n  officialLibrary: false\n", loaded(func(c *Config) {
			f := false
			c.Upstream.OfficialLibrary = &f
		})},
		{"explicit document start", "---\nlisten: :7000\n", loaded(func(c *Config) { c.Listen = ":7000" })},
	}
	for _, tt := range tests {
		p := writeFile(t, "wharf.yaml", tt.doc)
		got, err := Load([]string{"--config", p}, nil)
		if err != nil {
			t.Errorf("%s: Load: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}
