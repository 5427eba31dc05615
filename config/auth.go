package config

import (
	"fmt"
	"strings"
	"unicode"
)

// Auth is wharf's own access control: who may pull from and push to it.
type Auth struct {
	// Htpasswd names an htpasswd file of bcrypt entries (`htpasswd -B`).
	// When set, clients authenticate with HTTP Basic as one of its users;
	// the file is re-read when it changes. Default "": no access control,
	// every client may pull and push.
	Htpasswd string `yaml:"htpasswd"`
	// AnonymousPull lets clients without credentials pull (and read tags
	// and the catalog); pushes and deletes still need a user. nil (the
	// default) is off. Needs Htpasswd.
	AnonymousPull *bool `yaml:"anonymousPull"`
	// Rules restrict users by repository prefix, comma-separated
	// "user:access:prefix" entries: access is read or write (write
	// includes read and delete), user "*" is any user, prefix is a
	// repository as wharf stores it, "<registry>/<path>" such as
	// "docker.io/library/" or "ghcr.io/acme", or "*" for all. A user gets
	// the union of the rules naming them or "*"; with rules set, a user no
	// rule names has no access. Default "": every user reads and writes
	// everything. Needs Htpasswd.
	Rules string `yaml:"rules"`
}

// AnonymousPullOn reports whether anonymous pulls are allowed.
func (a Auth) AnonymousPullOn() bool { return a.AnonymousPull != nil && *a.AnonymousPull }

// AuthRule is one parsed entry of Auth.Rules.
type AuthRule struct {
	User   string // a user name, or "*" for any user
	Write  bool   // write (push, delete) as well as read
	Prefix string // repository prefix, "registry/path", without a trailing "/"; "" is every repository
}

// ParsedRules parses Rules. A validated Config's rules parse.
func (a Auth) ParsedRules() ([]AuthRule, error) {
	var out []AuthRule
	for _, entry := range strings.Split(a.Rules, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		// Three fields; the prefix, last, may hold a registry's port.
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%q is not user:access:prefix (e.g. ci:write:ghcr.io/acme)", entry)
		}
		user, access, prefix := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2])
		r := AuthRule{User: user}
		switch {
		case user == "" || strings.ContainsAny(user, " \t"):
			return nil, fmt.Errorf("%q: user %q is not a user name or *", entry, user)
		case access == "write":
			r.Write = true
		case access != "read":
			return nil, fmt.Errorf("%q: access %q is not read or write", entry, access)
		}
		switch prefix = strings.TrimRight(prefix, "/"); {
		case prefix == "*" || prefix == "":
			prefix = ""
		case strings.ToLower(prefix) != prefix || strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "*") ||
			strings.IndexFunc(prefix, unicode.IsSpace) >= 0: // "a /" would keep "a ", which no repository matches
			return nil, fmt.Errorf("%q: prefix %q is not a lower-case repository prefix (registry/path) or *", entry, prefix)
		}
		r.Prefix = prefix
		out = append(out, r)
	}
	return out, nil
}

// TLS makes wharf serve HTTPS.
type TLS struct {
	// CertFile and KeyFile name a PEM certificate (chain) and its key.
	// Both or neither; the files are re-read when they change, so a
	// renewed certificate is served without a restart. Default "": plain
	// HTTP.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// authProblems checks the auth and tls sections.
func (c Config) authProblems() []*fieldError {
	var ps []*fieldError
	add := func(path, format string, args ...any) {
		ps = append(ps, &fieldError{path: path, err: fmt.Errorf(format, args...)})
	}
	a := c.Auth
	if a.Htpasswd == "" {
		if a.AnonymousPullOn() {
			add("auth.anonymousPull", "needs auth.htpasswd (without it every client may pull and push)")
		}
		if a.Rules != "" {
			add("auth.rules", "needs auth.htpasswd (rules name its users)")
		}
	}
	if _, err := a.ParsedRules(); err != nil {
		add("auth.rules", "%w", err)
	}
	switch t := c.TLS; {
	case t.CertFile != "" && t.KeyFile == "":
		add("tls.keyFile", "required with tls.certFile")
	case t.CertFile == "" && t.KeyFile != "":
		add("tls.certFile", "required with tls.keyFile")
	}
	return ps
}
