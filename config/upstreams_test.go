package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpstreamEntryFieldsCoverStruct guards the entry table against the
// struct: a field without a key would be unsettable from the file.
func TestUpstreamEntryFieldsCoverStruct(t *testing.T) {
	t.Parallel()
	var u NamedUpstream
	var keys, tags []string
	for k := range u.fields() {
		keys = append(keys, k)
	}
	tags = yamlLeaves(reflect.TypeFor[NamedUpstream](), "")
	slices.Sort(keys)
	slices.Sort(tags)
	if !slices.Equal(keys, tags) {
		t.Errorf("entry keys %q, struct tags %q", keys, tags)
	}
}

func TestLoadUpstreamsFromFile(t *testing.T) {
	t.Parallel()
	pwFile := writeFile(t, "pw", "s3cret\n")
	file := writeFile(t, "wharf.yaml", `
upstream:
  tagTTL: 2m
upstreams:
  - name: ghcr.io
    url: https://ghcr.io
    username: bot
    passwordFile: `+pwFile+`
    tagTTL: 1h
    writeThrough: true
  - name: registry.local:5000
    prefix: local
    url: http://10.0.0.5:5000
    caFile: /etc/ca.pem
    insecureSkipVerify: true
    officialLibrary: true
  - name: mirror.gcr.io
    url: https://mirror.gcr.io
    dockerConfig: /root/.docker/config.json
`)
	c, err := Load([]string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 3 {
		t.Fatalf("upstreams %+v", c.Upstreams)
	}
	g, r, m := c.Upstreams[0], c.Upstreams[1], c.Upstreams[2]
	if g.Name != "ghcr.io" || g.Username != "bot" || g.Password.Value() != "s3cret" || g.PasswordFile != "" ||
		*g.TagTTL != Duration(time.Hour) || !g.WriteThroughOn() || *g.OfficialLibrary {
		t.Errorf("ghcr.io entry %+v", g)
	}
	if r.URL != "http://10.0.0.5:5000" || r.Prefix != "local" || r.CAFile != "/etc/ca.pem" || !r.InsecureOn() || !*r.OfficialLibrary ||
		*r.TagTTL != Duration(2*time.Minute) {
		t.Errorf("registry.local entry %+v (tagTTL should default to upstream.tagTTL)", r)
	}
	if m.DockerConfig != "/root/.docker/config.json" || m.WriteThroughOn() {
		t.Errorf("mirror.gcr.io entry %+v", m)
	}
	if !c.AnyWriteThrough() {
		t.Error("AnyWriteThrough false with ghcr.io's writeThrough on")
	}
}

// TestUpstreamsYAMLIsStrict: every problem in the list names its entry.
func TestUpstreamsYAMLIsStrict(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"unknown key with hint", "upstreams:\n  - name: ghcr.io\n    url: https://ghcr.io\n  - name: quay.io\n    urll: https://quay.io\n",
			`:5: unknown key "upstreams[1].urll" (did you mean "upstreams[1].url"?)`},
		{"unknown key", "upstreams:\n  - name: ghcr.io\n    colour: blue\n", `:3: unknown key "upstreams[0].colour"`},
		{"case hint", "upstreams:\n  - name: ghcr.io\n    TagTTL: 1m\n", `(did you mean "upstreams[0].tagTTL"?)`},
		{"twice", "upstreams:\n  - name: ghcr.io\n    name: quay.io\n", `:3: upstreams[0].name: set twice (first at line 2)`},
		{"not a mapping", "upstreams:\n  - ghcr.io\n", `:2: upstreams[0]: expected a mapping`},
		{"nested value", "upstreams:\n  - name: [a, b]\n", `upstreams[0].name: expected a single value`},
		{"bad duration", "upstreams:\n  - name: ghcr.io\n    url: https://ghcr.io\n    tagTTL: 300\n", `:4: upstreams[0].tagTTL: "300" has no unit`},
		{"bad bool", "upstreams:\n  - name: ghcr.io\n    url: https://ghcr.io\n    writeThrough: maybe\n", `upstreams[0].writeThrough: "maybe" is not true or false`},
		{"mapping instead of list", "upstreams:\n  name: ghcr.io\n", `upstreams: expected a single value`},
	}
	for _, tt := range tests {
		file := writeFile(t, "wharf.yaml", tt.yaml)
		_, err := Load([]string{"--config", file}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// TestUpstreamsCompactForm: WHARF_UPSTREAMS and repeated --upstreams add
// registries and merge into the file's list by name.
func TestUpstreamsCompactForm(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "upstreams:\n  - name: ghcr.io\n    url: https://ghcr.io\n    username: bot\n    password: pw\n")
	c, err := Load([]string{"--config", file, "--upstreams", "ghcr.io=http://127.0.0.1:5001", "--upstreams=registry.k8s.io=https://registry.k8s.io"},
		env(map[string]string{"WHARF_UPSTREAMS": "quay.io=https://quay.io, ghcr.io=https://ghcr.example"}))
	if err != nil {
		t.Fatal(err)
	}
	got := formatUpstreamList(c.Upstreams)
	if want := "ghcr.io=http://127.0.0.1:5001,quay.io=https://quay.io,registry.k8s.io=https://registry.k8s.io"; got != want {
		t.Errorf("upstreams %s, want %s", got, want)
	}
	if c.Upstreams[0].Username != "bot" || c.Upstreams[0].Password.Value() != "pw" {
		t.Errorf("merge by name lost the file's credentials: %+v", c.Upstreams[0])
	}
	if _, err := Load(nil, env(map[string]string{"WHARF_UPSTREAMS": "ghcr.io"})); err == nil ||
		!strings.Contains(err.Error(), `WHARF_UPSTREAMS: "ghcr.io" is not name=url`) {
		t.Errorf("entry without url: %v", err)
	}
	// An explicitly empty flag clears the list.
	c, err = Load([]string{"--config", file, "--upstreams="}, nil)
	if err != nil || c.Upstreams != nil {
		t.Errorf("--upstreams= : %+v, %v", c.Upstreams, err)
	}
}

func TestValidateUpstreams(t *testing.T) {
	t.Parallel()
	ttl := Duration(-time.Second)
	entry := func(name, url string) NamedUpstream { return NamedUpstream{Name: name, Registry: Registry{URL: url}} }
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Upstreams = []NamedUpstream{entry("", "https://ghcr.io")} },
			"upstreams[0].name: is required (the registry host clients name, e.g. ghcr.io)"},
		{"upper case", func(c *Config) { c.Upstreams = []NamedUpstream{entry("GHCR.io", "https://ghcr.io")} },
			`upstreams[0].name: "GHCR.io" must be lower case`},
		{"path", func(c *Config) { c.Upstreams = []NamedUpstream{entry("ghcr.io/acme", "https://ghcr.io")} },
			`upstreams[0].name: "ghcr.io/acme" is not a registry host (e.g. ghcr.io or registry.local:5000)`},
		{"no dot", func(c *Config) { c.Upstreams = []NamedUpstream{entry("team", "https://ghcr.io")} },
			`upstreams[0].name: "team" needs a dot or a port to be a registry host, as in image references`},
		{"duplicate", func(c *Config) {
			c.Upstreams = []NamedUpstream{entry("ghcr.io", "https://ghcr.io"), entry("ghcr.io", "https://x.io")}
		}, `upstreams[1].name: "ghcr.io" is also the name of upstreams[0]`},
		{"default's name", func(c *Config) { c.Upstreams = []NamedUpstream{entry("docker.io", "https://mirror.gcr.io")} },
			`upstreams[0].name: "docker.io" is also the name of upstream`},
		{"default's explicit name", func(c *Config) {
			c.Upstream.Name = "hub.local"
			c.Upstreams = []NamedUpstream{entry("hub.local", "https://mirror.gcr.io")}
		}, `upstreams[0].name: "hub.local" is also the name of upstream`},
		{"bad default name", func(c *Config) { c.Upstream.Name = "Hub" }, `upstream.name: "Hub" must be lower case`},
		{"url", func(c *Config) { c.Upstreams = []NamedUpstream{entry("ghcr.io", "ghcr.io")} },
			`upstreams[0].url: "ghcr.io" must start with https:// or http://`},
		{"user without password", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "ghcr.io", Registry: Registry{URL: "https://ghcr.io", Username: "bot"}}}
		}, "upstreams[0].password: required when a username is set (or set upstreams[0].passwordFile)"},
		{"docker config and user", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "ghcr.io", Registry: Registry{URL: "https://ghcr.io", Username: "bot", Password: "pw", DockerConfig: "/c.json"}}}
		}, "upstreams[0].dockerConfig: set together with upstreams[0].username; use one"},
		{"default docker config and user", func(c *Config) {
			c.Upstream.Username, c.Upstream.Password, c.Upstream.DockerConfig = "me", "pw", "/c.json"
		}, "upstream.dockerConfig: set together with upstream.username; use one"},
		{"negative ttl", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "ghcr.io", TagTTL: &ttl, Registry: Registry{URL: "https://ghcr.io"}}}
		}, "upstreams[0].tagTTL: -1s is negative; use 0 to revalidate every time"},
		{"prefix with a port", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Prefix: "local:5000", Registry: Registry{URL: "http://r:5000"}}}
		}, `upstreams[0].prefix: "local:5000" is not one lower-case path component (e.g. local, team-registry)`},
		{"prefix of two components", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Prefix: "a/b", Registry: Registry{URL: "http://r:5000"}}}
		}, `upstreams[0].prefix: "a/b" is not one lower-case path component (e.g. local, team-registry)`},
		{"upper-case prefix", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Prefix: "Local", Registry: Registry{URL: "http://r:5000"}}}
		}, `upstreams[0].prefix: "Local" is not one lower-case path component (e.g. local, team-registry)`},
		{"prefix names a later upstream", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Prefix: "ghcr.io", Registry: Registry{URL: "http://r:5000"}}, entry("ghcr.io", "https://ghcr.io")}
		}, `upstreams[0].prefix: "ghcr.io" already names upstreams[1]`},
		{"prefix docker.io", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Prefix: "docker.io", Registry: Registry{URL: "http://r:5000"}}}
		}, `upstreams[0].prefix: "docker.io" already names upstream`},
		{"prefix twice", func(c *Config) {
			c.Upstreams = []NamedUpstream{{Name: "a.example", Prefix: "x", Registry: Registry{URL: "https://a.example"}}, {Name: "b.example", Prefix: "x", Registry: Registry{URL: "https://b.example"}}}
		}, `upstreams[1].prefix: "x" already names upstreams[0].prefix`},
	}
	for _, tt := range tests {
		c := Default()
		tt.change(&c)
		if err := c.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}

	c := Default()
	on := true
	c.Upstream.WriteThroughSync = &on
	c.Upstreams = []NamedUpstream{{Name: "registry.local:5000", Registry: Registry{URL: "http://127.0.0.1:5000", WriteThrough: &on}}}
	if err := c.Validate(); err != nil {
		t.Errorf("writeThroughSync with an entry's writeThrough: %v", err)
	}
	c.Upstreams[0].Prefix = "local"
	if err := c.Validate(); err != nil {
		t.Errorf("prefix local: %v", err)
	}
}
