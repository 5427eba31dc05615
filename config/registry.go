package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Registry is how wharf reaches one registry and what it may do there.
// The default upstream and every upstreams entry embed it, so both are
// read, resolved, validated and turned into a client by the same code.
type Registry struct {
	// URL is the registry's base URL, http or https with a host. Required;
	// it may differ from the name clients use (a registry reached through
	// another address).
	URL string `yaml:"url"`
	// Username for basic or token auth. Default "" (anonymous).
	Username string `yaml:"username"`
	// Password for Username. Default "". Prefer PasswordFile: a flag's
	// value is visible in the process list.
	Password Secret `yaml:"password"`
	// PasswordFile names a file holding the password (a mounted secret).
	// Load reads it, trims trailing newlines, stores the result in
	// Password and clears this field, so a loaded Config has the password
	// in one place. Setting both Password and PasswordFile is an error.
	// Default "".
	PasswordFile string `yaml:"passwordFile"`
	// DockerConfig names a Docker config.json whose "auths" entry for this
	// registry supplies the credentials (base64 auth or username and
	// password); not together with Username. Default "".
	DockerConfig string `yaml:"dockerConfig"`
	// CAFile names a PEM file of CA certificates trusted for the registry
	// besides the system's. Default "".
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify accepts any certificate (lab use only). nil (the
	// default) is off.
	InsecureSkipVerify *bool `yaml:"insecureSkipVerify"`
	// OfficialLibrary applies Docker Hub's rule that a one-component name
	// ("alpine") means "library/alpine". nil (the default) means: on when
	// the URL's host is docker.io, registry-1.docker.io or index.docker.io,
	// off otherwise. Load resolves nil, so a loaded Config has it set.
	OfficialLibrary *bool `yaml:"officialLibrary"`
	// WriteThrough passes every manifest pushed to wharf under this
	// registry's names (with its blobs) on to it, from a queue kept across
	// restarts. nil (the default) is off: pushes stay on wharf.
	WriteThrough *bool `yaml:"writeThrough"`
	// ShadowTags lets a tag pushed to wharf replace a tag this registry
	// serves: every client pulling that name then gets the pushed image.
	// nil (the default) is off: such a push is refused with 403 DENIED.
	// Write-through implies it (the push reaches the registry too).
	ShadowTags *bool `yaml:"shadowTags"`
}

// OfficialLibraryRule reports whether Docker Hub's library/ rule applies:
// OfficialLibrary if set, else whether URL points at Docker Hub.
func (r Registry) OfficialLibraryRule() bool {
	if r.OfficialLibrary != nil {
		return *r.OfficialLibrary
	}
	p, err := url.Parse(r.URL)
	return err == nil && isDockerHub(p.Hostname())
}

// InsecureOn reports whether certificate checks are off.
func (r Registry) InsecureOn() bool { return r.InsecureSkipVerify != nil && *r.InsecureSkipVerify }

// WriteThroughOn reports whether pushes are passed on to the registry.
func (r Registry) WriteThroughOn() bool { return r.WriteThrough != nil && *r.WriteThrough }

// ShadowTagsOn reports whether pushes may replace the registry's tags.
func (r Registry) ShadowTagsOn() bool {
	return r.WriteThroughOn() || r.ShadowTags != nil && *r.ShadowTags
}

// resolve does what Load does for every registry: the password from its
// file and officialLibrary from the host. prefix is the field path
// ("upstream", "upstreams[2]").
func (l *loader) resolveRegistry(r *Registry, prefix string) {
	if r.PasswordFile != "" && r.Password == "" { // both set is a validation error
		if pw, ok := l.readSecretFile(r.PasswordFile, prefix+".passwordFile"); ok {
			r.Password, r.PasswordFile = pw, ""
		}
	}
	lib := r.OfficialLibraryRule()
	r.OfficialLibrary = &lib
}

// registryProblems checks one registry's URL and credentials; prefix is
// its field path ("upstream" or "upstreams[2]").
func registryProblems(prefix string, r Registry) []*fieldError {
	var ps []*fieldError
	add := func(field, format string, args ...any) {
		ps = append(ps, &fieldError{path: prefix + "." + field, err: fmt.Errorf(format, args...)})
	}
	if err := checkUpstreamURL(r.URL); err != nil {
		add("url", "%w", err)
	}
	hasPassword := r.Password != "" || r.PasswordFile != ""
	switch {
	case r.Password != "" && r.PasswordFile != "":
		add("password", "set together with %s.passwordFile; use one", prefix)
	case hasPassword && r.Username == "":
		add("username", "required when a password is set")
	case !hasPassword && r.Username != "":
		add("password", "required when a username is set (or set %s.passwordFile)", prefix)
	}
	if r.DockerConfig != "" && (r.Username != "" || hasPassword) {
		add("dockerConfig", "set together with %s.username; use one", prefix)
	}
	return ps
}

// readSecretFile reads the secret in file, which the setting at path
// names, trimming trailing newlines. It reports a file that cannot be read
// or holds nothing as a problem of that setting.
func (l *loader) readSecretFile(file, path string) (Secret, bool) {
	data, err := os.ReadFile(file)
	secret := strings.TrimRight(string(data), "\r\n")
	switch {
	case err != nil:
		l.fail(&fieldError{path: path, err: err, from: l.from[path]})
	case secret == "":
		l.fail(&fieldError{path: path, err: fmt.Errorf("%s is empty", file), from: l.from[path]})
	default:
		return Secret(secret), true
	}
	return "", false
}
