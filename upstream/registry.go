package upstream

import (
	"net/url"
	"strings"
)

// Docker Hub's names. Its registry API lives on registry-1.docker.io
// (index.docker.io is the legacy alias); images are known as docker.io/….
const (
	DockerHubName    = "docker.io"
	DockerHubURL     = "https://registry-1.docker.io"
	officialLibrary  = "library/"
	dockerHubAPIHost = "registry-1.docker.io"
	dockerHubIndex   = "index.docker.io"
)

// defaultName labels an upstream by its URL's host (port included), with
// Docker Hub's API hosts shown as the name people use, docker.io.
func defaultName(u *url.URL) string {
	switch strings.ToLower(u.Hostname()) {
	case dockerHubAPIHost, dockerHubIndex, DockerHubName:
		if u.Port() == "" || u.Port() == "443" {
			return DockerHubName
		}
	}
	return strings.ToLower(u.Host)
}

// Repository maps a repository path as clients name it to the path the
// upstream knows. With OfficialLibrary (Docker Hub), a one-component path
// "alpine" is "library/alpine"; every other path is returned unchanged.
// It is idempotent, so "library/alpine" stays as it is, and the proxy can
// call it to give "alpine" and "library/alpine" one cache identity. The
// client's methods apply it themselves.
func (c *Client) Repository(path string) string {
	if !c.officialLibrary || path == "" || strings.Contains(path, "/") {
		return path
	}
	return officialLibrary + path
}
