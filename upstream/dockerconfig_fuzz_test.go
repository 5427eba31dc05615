package upstream

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDockerConfig reads a fuzzed config.json for a fuzzed host. It never
// panics; credentials it returns have a user; registryKey is a
// normalisation (applied twice it changes nothing); and a config.json
// written with an entry for the host yields exactly that user and
// password, whatever bytes the password holds.
func FuzzDockerConfig(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString([]byte("alice:s3cr:et"))
	for _, s := range []struct{ config, host string }{
		{`{"auths":{"ghcr.io":{"auth":"` + b64 + `"}}}`, "ghcr.io"},
		{`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64 + `"}}}`, "docker.io"},
		{`{"auths":{"http://registry.local:5000/v2/":{"username":"bob","password":"pw"}}}`, "registry.local:5000"},
		{`{"auths":{"ghcr.io":{"identitytoken":"x"}}}`, "GHCR.io"},
		{`{"auths":{"ghcr.io":{"auth":"!!!"}}}`, "ghcr.io"},
		{`{"auths":{},"credsStore":"desktop","credHelpers":{"ghcr.io":"gh"}}`, "ghcr.io"},
		{`{"auths":null}`, "registry-1.docker.io"},
		{`[]`, ""},
	} {
		f.Add([]byte(s.config), s.host, "alice", "p:w")
	}
	dir := f.TempDir()
	file := filepath.Join(dir, "config.json")
	f.Fuzz(func(t *testing.T, config []byte, host, user, password string) {
		if k := registryKey(host); registryKey(k) != k {
			t.Fatalf("registryKey(%q) = %q, but registryKey(%q) = %q", host, k, k, registryKey(k))
		}
		if err := os.WriteFile(file, config, 0o600); err != nil {
			t.Fatal(err)
		}
		if u, _, err := dockerConfigCredentials(file, host); err == nil && u == "" {
			t.Fatalf("credentials without a user")
		}
		if user == "" || strings.Contains(user, ":") || !utf8.ValidString(host) {
			return // config.json cannot hold such a user, or such a key
		}
		entry := map[string]map[string]string{host: {"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}
		b, _ := json.Marshal(map[string]any{"auths": entry})
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		u, p, err := dockerConfigCredentials(file, host)
		if err != nil || u != user || p != password {
			t.Fatalf("wrote %q/%q for %q, read %q/%q, %v", user, password, host, u, p, err)
		}
	})
}
