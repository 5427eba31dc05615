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
	// the file is re-read when it changes. Default "": no users, so wharf
	// is a read-only mirror (anyone may pull, nobody may push or delete)
	// unless AnonymousPush opens pushes.
	Htpasswd string `yaml:"htpasswd"`
	// AnonymousPull lets clients without credentials pull (and read tags
	// and the catalog) where there are users; with Rules, only what a rule
	// for the user "anonymous" grants. nil (the default) is off. Needs
	// Htpasswd (without it, pulls are open anyway).
	AnonymousPull *bool `yaml:"anonymousPull"`
	// AnonymousPush lets clients without credentials push and delete (and
	// pull); with Rules, only where a rule for "anonymous" grants write.
	// For a lab or CI network: on a site's mirror any client could then
	// push. nil (the default) is off.
	AnonymousPush *bool `yaml:"anonymousPush"`
	// FailedLogins is how many wrong passwords one client address may send
	// in a minute; past it, its logins are answered 429 TOOMANYREQUESTS
	// until the minute ends (bcrypt is not run for them). 0 is no limit.
	// Default 10.
	FailedLogins int `yaml:"failedLogins"`
	// Rules restrict users by repository prefix, comma-separated
	// "user:access:prefix" entries: access is read or write (write
	// includes read and delete), user "*" is any user with credentials,
	// "anonymous" is clients without (when AnonymousPull or AnonymousPush
	// lets them in at all), prefix is a
	// repository as wharf stores it, "<registry>/<path>" such as
	// "docker.io/library/" or "ghcr.io/acme", or "*" for all. A user gets
	// the union of the rules naming them or "*"; with rules set, a user no
	// rule names has no access. Default "": every user reads and writes
	// everything. Needs Htpasswd, unless every rule is for "anonymous".
	Rules string `yaml:"rules"`
}

// AnonymousUser is the name rules give clients without credentials.
const AnonymousUser = "anonymous"

// AnonymousPullOn reports whether anonymous pulls are allowed.
func (a Auth) AnonymousPullOn() bool { return a.AnonymousPull != nil && *a.AnonymousPull }

// AnonymousPushOn reports whether anonymous pushes are allowed.
func (a Auth) AnonymousPushOn() bool { return a.AnonymousPush != nil && *a.AnonymousPush }

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
	rules, err := a.ParsedRules()
	if err != nil {
		add("auth.rules", "%w", err)
	}
	if a.Htpasswd == "" {
		if a.AnonymousPullOn() {
			add("auth.anonymousPull", "needs auth.htpasswd (without users every client may pull already)")
		}
		for _, r := range rules {
			if r.User != AnonymousUser {
				add("auth.rules", "rule for %q needs auth.htpasswd (rules name its users; without it only %q rules apply)", r.User, AnonymousUser)
				break
			}
		}
	}
	if a.FailedLogins < 0 {
		add("auth.failedLogins", "must be >= 0 (0 is no limit), got %d", a.FailedLogins)
	}
	switch t := c.TLS; {
	case t.CertFile != "" && t.KeyFile == "":
		add("tls.keyFile", "required with tls.certFile")
	case t.CertFile == "" && t.KeyFile != "":
		add("tls.certFile", "required with tls.keyFile")
	}
	return ps
}
