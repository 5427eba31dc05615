package upstream

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// dockerConfig is the part of a Docker config.json (~/.docker/config.json,
// written by docker login) that holds stored credentials.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"` // base64 of "user:password"
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// dockerConfigCredentials reads the user and password stored in the
// Docker config.json at path for the first of hosts that has an entry.
// Keys are matched as docker does (ConvertToHostname): scheme and path are
// dropped, so "https://ghcr.io", "ghcr.io" and "ghcr.io/v2/" are one key,
// and Docker Hub's hosts, including the historical
// "https://index.docker.io/v1/", are all one registry.
//
// Credential helpers (credsStore, credHelpers) run external programs and
// are not consulted: a host whose credentials only a helper holds is an
// error that says so, rather than a silent anonymous pull.
func dockerConfigCredentials(path string, hosts ...string) (user, password string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("docker config: %w", err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", "", fmt.Errorf("docker config %s: %w", path, err)
	}
	for _, host := range hosts {
		want := registryKey(host)
		for key, a := range cfg.Auths {
			if registryKey(key) != want {
				continue
			}
			switch {
			case a.Auth != "":
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return "", "", fmt.Errorf("docker config %s: auth for %s is not base64", path, key)
				}
				u, p, ok := strings.Cut(string(raw), ":")
				if !ok || u == "" {
					return "", "", fmt.Errorf("docker config %s: auth for %s is not user:password", path, key)
				}
				return u, p, nil
			case a.Username != "" && a.Password != "":
				return a.Username, a.Password, nil
			case a.IdentityToken != "":
				return "", "", fmt.Errorf("docker config %s: %s has only an identity token, which wharf cannot use; store a user and password or token", path, key)
			}
		}
	}
	helper := ""
	for _, host := range hosts {
		if h, ok := cfg.CredHelpers[host]; ok {
			helper = h
		}
	}
	if helper == "" {
		helper = cfg.CredsStore
	}
	if helper != "" {
		return "", "", fmt.Errorf("docker config %s: no stored credentials for %s (credential helper %q is not supported; use username and passwordFile)", path, strings.Join(hosts, " or "), helper)
	}
	return "", "", fmt.Errorf("docker config %s: no credentials for %s", path, strings.Join(hosts, " or "))
}

// registryKey reduces a config.json key or a host to the registry host it
// names, lower case, with Docker Hub's hosts as docker.io.
func registryKey(s string) string {
	s = strings.ToLower(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case DockerHubName, dockerHubAPIHost, dockerHubIndex:
		return DockerHubName
	}
	return s
}
