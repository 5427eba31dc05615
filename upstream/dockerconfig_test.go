package upstream_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func writeDockerConfig(t *testing.T, json string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerConfigCredentials pulls from a registry that needs a user,
// with the credentials taken from a Docker config.json in each form
// docker writes them.
func TestDockerConfigCredentials(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "private/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.OCIManifest))
	b64 := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	tests := []struct {
		name, json, wantErr string
	}{
		{"base64 auth, host key", `{"auths":{"` + reg.Host + `":{"auth":"` + b64 + `"}}}`, ""},
		{"base64 auth, URL key", `{"auths":{"http://` + reg.Host + `/v2/":{"auth":"` + b64 + `"}}}`, ""},
		{"username and password", `{"auths":{"` + reg.Host + `":{"username":"alice","password":"s3cret"}}}`, ""},
		{"another host only", `{"auths":{"ghcr.io":{"auth":"` + b64 + `"}}}`, "no credentials for " + reg.Host},
		{"helper only", `{"auths":{},"credsStore":"desktop"}`, `credential helper "desktop" is not supported`},
		{"identity token", `{"auths":{"` + reg.Host + `":{"identitytoken":"x"}}}`, "only an identity token"},
		{"bad base64", `{"auths":{"` + reg.Host + `":{"auth":"%%%"}}}`, "is not base64"},
		{"not JSON", `auths`, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := upstream.New(upstream.Options{URL: reg.URL, DockerConfig: writeDockerConfig(t, tt.json)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), b64) {
					t.Errorf("error shows the credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.GetManifest(t.Context(), "private/app", "v1", acceptAll); err != nil {
				t.Errorf("pull with credentials from config.json: %v", err)
			}
		})
	}

	// A user given explicitly wins over the file.
	c := newClient(t, reg.URL, func(o *upstream.Options) {
		o.Username, o.Password = "alice", "wrong"
		o.DockerConfig = writeDockerConfig(t, `{"auths":{"`+reg.Host+`":{"auth":"`+b64+`"}}}`)
	})
	if _, err := c.GetManifest(t.Context(), "private/app", "v1", acceptAll); !errors.Is(err, upstream.ErrUnauthorized) {
		t.Errorf("explicit wrong password: %v, want ErrUnauthorized", err)
	}
}

// TestDockerConfigDockerHubKeys: docker login writes Docker Hub's entry
// under https://index.docker.io/v1/; it serves an upstream named docker.io
// whatever its URL.
func TestDockerConfigDockerHubKeys(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "library/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.OCIManifest))
	b64 := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := writeDockerConfig(t, `{"auths":{"https://index.docker.io/v1/":{"auth":"`+b64+`"}}}`)
	c := newClient(t, reg.URL, func(o *upstream.Options) { o.Name, o.DockerConfig, o.OfficialLibrary = "docker.io", cfg, true })
	if _, err := c.GetManifest(t.Context(), "app", "v1", acceptAll); err != nil {
		t.Errorf("docker.io credentials from index.docker.io/v1/: %v", err)
	}
}
