package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// NamedUpstream is one more registry wharf mirrors besides the default
// Upstream. Clients reach it by its Name: containerd's ?ns=<Name>, or a
// path prefix (/v2/<Name>/owner/repo/…). Timeout, retries and the health
// settings are the default upstream's.
type NamedUpstream struct {
	// Name is the registry host as clients name it in image references,
	// "ghcr.io" or "registry.local:5000": lower case, a port allowed.
	// Required, and unique (also against the default upstream's name).
	Name string `yaml:"name"`
	// Prefix is a short alias clients may use instead of Name as the path
	// prefix (/v2/<Prefix>/owner/repo/…): docker and crane cannot parse a
	// registry with a port there ("wharf:5000/registry.local:5000/app"),
	// but "wharf:5000/local/app" is a reference. One lower-case path
	// component, unique, and not another upstream's name; it hides
	// Docker Hub's namespace of that name on the default upstream.
	// Default "" (the name only).
	Prefix string `yaml:"prefix"`
	// Registry says how to reach it and what pushes may do there, as
	// for the default upstream.
	Registry `yaml:",inline"`
	// TagTTL overrides upstream.tagTTL for this registry. nil (the
	// default) takes upstream.tagTTL; Load resolves it.
	TagTTL *Duration `yaml:"tagTTL"`
}

// fields maps each YAML key of an upstreams entry to the field it sets;
// the YAML walker and the tests are driven by it.
func (u *NamedUpstream) fields() map[string]any {
	return map[string]any{
		"name": &u.Name, "prefix": &u.Prefix, "url": &u.URL,
		"username": &u.Username, "password": &u.Password, "passwordFile": &u.PasswordFile,
		"dockerConfig": &u.DockerConfig, "caFile": &u.CAFile, "insecureSkipVerify": &u.InsecureSkipVerify,
		"tagTTL": &u.TagTTL, "officialLibrary": &u.OfficialLibrary, "writeThrough": &u.WriteThrough,
		"shadowTags": &u.ShadowTags,
	}
}

// setEntryField parses s into one field of an upstreams entry.
func setEntryField(p any, s string) error {
	if pp, ok := p.(**Duration); ok {
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*pp = &d
		return nil
	}
	return setValue(p, s)
}

// parseUpstreamList merges the compact form "name=url,name=url" into list:
// a name already there gets the new URL (keeping its other settings), a new
// name is added. So the file can hold credentials while the environment
// or a flag points a registry elsewhere. An empty s clears the list.
func parseUpstreamList(list *[]NamedUpstream, s string) error {
	if strings.TrimSpace(s) == "" {
		*list = nil
		return nil
	}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, u, ok := strings.Cut(entry, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if !ok || name == "" || u == "" {
			return fmt.Errorf("%q is not name=url (e.g. ghcr.io=https://ghcr.io)", entry)
		}
		found := false
		for i := range *list {
			if (*list)[i].Name == name {
				(*list)[i].URL, found = u, true
			}
		}
		if !found {
			*list = append(*list, NamedUpstream{Name: name, Registry: Registry{URL: u}})
		}
	}
	return nil
}

// formatUpstreamList writes list in the compact form, names and URLs only.
func formatUpstreamList(list []NamedUpstream) string {
	parts := make([]string, len(list))
	for i, u := range list {
		parts[i] = u.Name + "=" + u.URL
	}
	return strings.Join(parts, ",")
}

// anchoredDomain is the reference grammar's registry host (with port).
var anchoredDomain = regexp.MustCompile(`^(?:` + reference.DomainRegexp.String() + `)$`)

// anchoredName is the grammar's repository name; without a "/" it is
// one path component (the optional registry part needs a "/" after it).
var anchoredName = regexp.MustCompile(`^(?:` + reference.NameRegexp.String() + `)$`)

// prefixProblem checks an upstream's path prefix: one path component as
// the reference grammar writes it.
func prefixProblem(prefix string) error {
	if strings.Contains(prefix, "/") || !anchoredName.MatchString(prefix) {
		return fmt.Errorf("%q is not one lower-case path component (e.g. local, team-registry)", prefix)
	}
	return nil
}

// UpstreamName is the name a registry URL is known by when none is given:
// its host with port, Docker Hub's API hosts as "docker.io". It matches
// upstream.Client's default name, so cache keys stay as they were.
func UpstreamName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	if isDockerHub(u.Hostname()) {
		return "docker.io"
	}
	return strings.ToLower(u.Host)
}

func isDockerHub(host string) bool {
	switch strings.ToLower(host) {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return true
	}
	return false
}

// DefaultName is the default upstream's name: Name, or the URL's.
func (u Upstream) DefaultName() string {
	if u.Name != "" {
		return u.Name
	}
	return UpstreamName(u.URL)
}

// AnyWriteThrough reports whether some upstream has write-through on.
func (c Config) AnyWriteThrough() bool {
	if c.Upstream.WriteThroughOn() {
		return true
	}
	for _, u := range c.Upstreams {
		if u.WriteThroughOn() {
			return true
		}
	}
	return false
}

// checkRegistryName accepts a registry host as image references write it:
// lower case, dotted or with a port (or "localhost"), no path.
func checkRegistryName(name string) error {
	switch {
	case name == "":
		return errors.New("is required (the registry host clients name, e.g. ghcr.io)")
	case strings.ToLower(name) != name:
		return fmt.Errorf("%q must be lower case", name)
	case !anchoredDomain.MatchString(name):
		return fmt.Errorf("%q is not a registry host (e.g. ghcr.io or registry.local:5000)", name)
	case !strings.ContainsAny(name, ".:") && name != "localhost":
		// As in image references: "team" would be a Docker Hub namespace.
		return fmt.Errorf("%q needs a dot or a port to be a registry host, as in image references", name)
	}
	return nil
}

// upstreamProblems checks what the several-upstreams settings add: the
// default upstream's name and files, and every upstreams entry.
func (c Config) upstreamProblems() []*fieldError {
	var ps []*fieldError
	add := func(path, format string, args ...any) {
		ps = append(ps, &fieldError{path: path, err: fmt.Errorf(format, args...)})
	}
	if c.Upstream.Name != "" {
		if err := checkRegistryName(c.Upstream.Name); err != nil {
			add("upstream.name", "%w", err)
		}
	}
	names := map[string]string{c.Upstream.DefaultName(): "upstream"}
	for i, u := range c.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		if err := checkRegistryName(u.Name); err != nil {
			add(p+".name", "%w", err)
		} else if other, dup := names[u.Name]; dup {
			add(p+".name", "%q is also the name of %s", u.Name, other)
		} else {
			names[u.Name] = p
		}
		ps = append(ps, registryProblems(p, u.Registry)...)
		if u.TagTTL != nil && *u.TagTTL < 0 {
			add(p+".tagTTL", "%s is negative; use 0 to revalidate every time", *u.TagTTL)
		}
	}
	return append(ps, c.prefixProblems()...)
}

// prefixProblems checks every upstreams entry's prefix against the
// grammar, every upstream's name (the default's "docker.io" alias
// included) and the other prefixes: each must stand for one upstream.
func (c Config) prefixProblems() []*fieldError {
	taken := map[string]string{c.Upstream.DefaultName(): "upstream", "docker.io": "upstream"}
	for i, u := range c.Upstreams {
		taken[u.Name] = fmt.Sprintf("upstreams[%d]", i)
	}
	var ps []*fieldError
	for i, u := range c.Upstreams {
		if u.Prefix == "" {
			continue
		}
		p := fmt.Sprintf("upstreams[%d].prefix", i)
		if err := prefixProblem(u.Prefix); err != nil {
			ps = append(ps, &fieldError{path: p, err: err})
		} else if other, dup := taken[u.Prefix]; dup {
			ps = append(ps, &fieldError{path: p, err: fmt.Errorf("%q already names %s", u.Prefix, other)})
		} else {
			taken[u.Prefix] = p
		}
	}
	return ps
}

// resolveUpstreams resolves each upstreams entry as the default upstream
// (resolveRegistry), and its tagTTL from upstream.tagTTL.
func (l *loader) resolveUpstreams() {
	for i := range l.cfg.Upstreams {
		u := &l.cfg.Upstreams[i]
		l.resolveRegistry(&u.Registry, fmt.Sprintf("upstreams[%d]", i))
		if u.TagTTL == nil {
			ttl := l.cfg.Upstream.TagTTL
			u.TagTTL = &ttl
		}
	}
}
