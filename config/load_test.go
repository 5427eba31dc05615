package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a lookupEnv backed by m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// writeFile writes content to name in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loaded is Default as Load returns it: officialLibrary resolved.
func loaded(change func(*Config)) Config {
	c := Default()
	if change != nil {
		change(&c)
	}
	lib := c.Upstream.OfficialLibraryRule()
	c.Upstream.OfficialLibrary = &lib
	return c
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", `
listen: ":6000"
upstream:
  tagTTL: 1m
  retries: 2
storage:
  dir: /file
  maxSize: 1GiB
log:
  level: debug
`)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Config
	}{
		{"defaults", nil, nil, loaded(nil)},
		{"file over defaults", []string{"--config", file}, nil, loaded(func(c *Config) {
			c.Listen, c.Upstream.TagTTL, c.Upstream.Retries = ":6000", Duration(time.Minute), 2
			c.Storage.Dir, c.Storage.MaxSize, c.Log.Level = "/file", 1<<30, "debug"
		})},
		{"file named by env", nil, map[string]string{"WHARF_CONFIG": file}, loaded(func(c *Config) {
			c.Listen, c.Upstream.TagTTL, c.Upstream.Retries = ":6000", Duration(time.Minute), 2
			c.Storage.Dir, c.Storage.MaxSize, c.Log.Level = "/file", 1<<30, "debug"
		})},
		{"env over file, only what it sets", []string{"-config", file}, map[string]string{
			"WHARF_DATA": "/env", "WHARF_MAX_SIZE": "2G", "WHARF_LOG_FORMAT": "json",
		}, loaded(func(c *Config) {
			c.Listen, c.Upstream.TagTTL, c.Upstream.Retries = ":6000", Duration(time.Minute), 2
			c.Storage.Dir, c.Storage.MaxSize, c.Log.Level, c.Log.Format = "/env", 2<<30, "debug", "json"
		})},
		{"flag over env over file, only what each sets", []string{
			"--config=" + file, "--data", "/flag", "-upstream-retries", "7", "--debug-listen", "127.0.0.1:6060",
		}, map[string]string{
			"WHARF_DATA": "/env", "WHARF_MAX_SIZE": "2G", "WHARF_UPSTREAM_RETRIES": "3",
		}, loaded(func(c *Config) {
			c.Listen, c.Upstream.TagTTL, c.Upstream.Retries = ":6000", Duration(time.Minute), 7
			c.Storage.Dir, c.Storage.MaxSize, c.Log.Level = "/flag", 2<<30, "debug"
			c.Debug.Listen = "127.0.0.1:6060"
		})},
		{"--config over WHARF_CONFIG", []string{"--config", file}, map[string]string{"WHARF_CONFIG": "/nonexistent.yaml"}, loaded(func(c *Config) {
			c.Listen, c.Upstream.TagTTL, c.Upstream.Retries = ":6000", Duration(time.Minute), 2
			c.Storage.Dir, c.Storage.MaxSize, c.Log.Level = "/file", 1<<30, "debug"
		})},
		{"empty env is unset", nil, map[string]string{"WHARF_LISTEN": "", "WHARF_MAX_SIZE": ""}, loaded(nil)},
		{"empty flag is explicit", []string{"--debug-listen="}, map[string]string{"WHARF_DEBUG_LISTEN": ":6060"}, loaded(nil)},
		{"last flag wins", []string{"--listen", ":1", "--listen", ":2"}, nil, loaded(func(c *Config) { c.Listen = ":2" })},
		{"every env", nil, map[string]string{
			"WHARF_LISTEN": ":7000", "WHARF_UPSTREAM": "https://ghcr.io", "WHARF_UPSTREAM_USERNAME": "me",
			"WHARF_UPSTREAM_PASSWORD": "pw", "WHARF_TAG_TTL": "0", "WHARF_UPSTREAM_TIMEOUT": "1m",
			"WHARF_UPSTREAM_RETRIES": "0", "WHARF_UPSTREAM_OFFICIAL_LIBRARY": "true", "WHARF_DATA": "/d",
			"WHARF_MAX_SIZE": "100MB", "WHARF_LOG_LEVEL": "warn", "WHARF_LOG_FORMAT": "json",
			"WHARF_DEBUG_LISTEN": ":6060",
		}, loaded(func(c *Config) {
			c.Listen, c.Upstream.URL, c.Upstream.Username, c.Upstream.Password = ":7000", "https://ghcr.io", "me", "pw"
			c.Upstream.TagTTL, c.Upstream.Timeout, c.Upstream.Retries = 0, Duration(time.Minute), 0
			lib := true
			c.Upstream.OfficialLibrary = &lib
			c.Storage.Dir, c.Storage.MaxSize = "/d", 100_000_000
			c.Log.Level, c.Log.Format, c.Debug.Listen = "warn", "json", ":6060"
		})},
		{"every flag", []string{
			"--listen", ":7000", "--upstream", "https://ghcr.io", "--upstream-username", "me",
			"--upstream-password", "pw", "--tag-ttl", "0", "--upstream-timeout", "1m",
			"--upstream-retries", "0", "--upstream-official-library", "--data", "/d",
			"--max-size", "100MB", "--log-level", "warn", "--log-format", "json", "--debug-listen", ":6060",
		}, nil, loaded(func(c *Config) {
			c.Listen, c.Upstream.URL, c.Upstream.Username, c.Upstream.Password = ":7000", "https://ghcr.io", "me", "pw"
			c.Upstream.TagTTL, c.Upstream.Timeout, c.Upstream.Retries = 0, Duration(time.Minute), 0
			lib := true
			c.Upstream.OfficialLibrary = &lib
			c.Storage.Dir, c.Storage.MaxSize = "/d", 100_000_000
			c.Log.Level, c.Log.Format, c.Debug.Listen = "warn", "json", ":6060"
		})},
	}
	for _, tt := range tests {
		got, err := Load(tt.args, env(tt.env))
		if err != nil {
			t.Errorf("%s: Load: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestLoadErrorsNameTheirSource(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "upstream:\n  retries: 50\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // every line of the error, in order
	}{
		{"bad env", nil, map[string]string{"WHARF_MAX_SIZE": "20XB"},
			[]string{`WHARF_MAX_SIZE: "20XB" is not a size (use e.g. 512MiB, 20GiB)`}},
		{"bad flag", []string{"--tag-ttl", "300"}, nil,
			[]string{`--tag-ttl: "300" has no unit (use e.g. 90s, 5m, 1h30m)`}},
		{"bad int flag", []string{"--upstream-retries", "many"}, nil,
			[]string{`--upstream-retries: "many" is not a whole number`}},
		{"bad bool env", nil, map[string]string{"WHARF_UPSTREAM_OFFICIAL_LIBRARY": "maybe"},
			[]string{`WHARF_UPSTREAM_OFFICIAL_LIBRARY: "maybe" is not true or false`}},
		{"range error names the layer", nil, map[string]string{"WHARF_UPSTREAM_RETRIES": "21"},
			[]string{"upstream.retries: 21 is outside 0..20 (from WHARF_UPSTREAM_RETRIES)"}},
		{"range error from a flag", []string{"--log-format", "xml"}, nil,
			[]string{`log.format: "xml" is not text or json (from --log-format)`}},
		{"range error from the file", []string{"--config", file}, nil,
			[]string{"upstream.retries: 50 is outside 0..20 (from " + file + ":2)"}},
		{"missing file", []string{"--config", "/nonexistent/wharf.yaml"}, nil,
			[]string{"config file: open /nonexistent/wharf.yaml: no such file or directory"}},
		{"everything at once", []string{"--config", file, "--listen", "nope", "--max-size", "-1"},
			map[string]string{"WHARF_TAG_TTL": "5", "WHARF_LOG_LEVEL": "loud"},
			[]string{
				`WHARF_TAG_TTL: "5" has no unit (use e.g. 90s, 5m, 1h30m)`,
				`--max-size: "-1" is negative`,
				`listen: "nope" is not host:port: address nope: missing port in address (from --listen)`,
				"upstream.retries: 50 is outside 0..20 (from " + file + ":2)",
				`log.level: "loud" is not one of trace, debug, info, warn, warning, error, fatal, panic (from WHARF_LOG_LEVEL)`,
			}},
	}
	for _, tt := range tests {
		c, err := Load(tt.args, env(tt.env))
		if err == nil {
			t.Errorf("%s: Load = %+v, nil; want an error", tt.name, c)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: error lines\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestLoadRejectsBadCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope (see wharf serve --help)"},
		{[]string{"--listen"}, "flag needs an argument: -listen (see wharf serve --help)"},
		{[]string{"extra"}, `unexpected argument "extra": wharf serve takes only flags (see --help)`},
		{[]string{"--data", "/d", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		_, err := LoadWith(LoadOptions{Args: tt.args, Output: &out})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed %q; errors are returned, not printed", tt.args, out.String())
		}
	}
}

func TestLoadHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		_, err := LoadWith(LoadOptions{Args: []string{"--data", "/d", arg}, Output: &out})
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		for _, s := range Settings() {
			if !strings.Contains(out.String(), "--"+s.Flag+" ") || !strings.Contains(out.String(), s.Env) {
				t.Errorf("%s: usage lacks --%s or %s:\n%s", arg, s.Flag, s.Env, out.String())
			}
		}
		if !strings.Contains(out.String(), `(default "5m")`) {
			t.Errorf("%s: usage lacks defaults:\n%s", arg, out.String())
		}
	}
}

func TestLoadPasswordFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
		err     string
	}{
		{"newline trimmed", "s3cret\n", "s3cret", ""},
		{"crlf trimmed", "s3cret\r\n", "s3cret", ""},
		{"no newline", "s3cret", "s3cret", ""},
		{"inner spaces kept", " s3 cret \n\n", " s3 cret ", ""},
		{"empty", "\n", "", "upstream.passwordFile: "},
	}
	for _, tt := range tests {
		p := writeFile(t, "pw", tt.content)
		c, err := Load([]string{"--upstream-username", "me", "--upstream-password-file", p}, nil)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) || !strings.Contains(err.Error(), "is empty (from --upstream-password-file)") {
				t.Errorf("%s: err = %v, want an empty-file error", tt.name, err)
			}
			continue
		}
		if err != nil || c.Upstream.Password.Value() != tt.want || c.Upstream.PasswordFile != "" {
			t.Errorf("%s: password %q, file %q, err %v; want %q and the file field cleared",
				tt.name, c.Upstream.Password.Value(), c.Upstream.PasswordFile, err, tt.want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: a loaded config must validate again: %v", tt.name, err)
		}
	}

	_, err := Load(nil, env(map[string]string{
		"WHARF_UPSTREAM_USERNAME": "me", "WHARF_UPSTREAM_PASSWORD_FILE": "/nonexistent/pw",
	}))
	if err == nil || !strings.HasPrefix(err.Error(), "upstream.passwordFile: open /nonexistent/pw: no such file or directory (from WHARF_UPSTREAM_PASSWORD_FILE)") {
		t.Errorf("missing password file: err = %v", err)
	}

	p := writeFile(t, "pw", "s3cret\n")
	_, err = Load([]string{"--upstream-username", "me", "--upstream-password", "x", "--upstream-password-file", p}, nil)
	if err == nil || err.Error() != "upstream.password: set together with upstream.passwordFile; use one (from --upstream-password)" {
		t.Errorf("password and file: err = %v", err)
	}
}

func TestOfficialLibraryDefaultsByHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		set  string // --upstream-official-library value; "" = not given
		want bool
	}{
		{"https://registry-1.docker.io", "", true},
		{"https://docker.io", "", true},
		{"https://index.docker.io:443/", "", true},
		{"https://Registry-1.Docker.IO", "", true},
		{"https://ghcr.io", "", false},
		{"http://localhost:5001", "", false},
		{"https://mirror.docker.io.example.com", "", false},
		{"https://registry-1.docker.io", "false", false},
		{"https://ghcr.io", "true", true},
	}
	for _, tt := range tests {
		args := []string{"--upstream", tt.url}
		if tt.set != "" {
			args = append(args, "--upstream-official-library="+tt.set)
		}
		c, err := Load(args, nil)
		if err != nil || c.Upstream.OfficialLibrary == nil || *c.Upstream.OfficialLibrary != tt.want {
			t.Errorf("%v: officialLibrary = %v, %v; want %v", args, c.Upstream.OfficialLibrary, err, tt.want)
		}
		u := Upstream{Registry: Registry{URL: tt.url}}
		if tt.set == "" && u.OfficialLibraryRule() != tt.want {
			t.Errorf("Upstream{URL: %q}.OfficialLibraryRule() = %v, want %v", tt.url, !tt.want, tt.want)
		}
	}
}
