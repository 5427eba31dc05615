package proxy

import (
	"net/http"
	"strings"

	"github.com/wharf-mirror/wharf/cache"
)

// Rule grants User read, or read and write, on the repositories under
// Prefix.
type Rule struct {
	// User is a user name, or "*" for every authenticated user.
	User string
	// Prefix is a repository as stored, "<registry>/<path>" such as
	// "docker.io/library" or "ghcr.io/acme", matched by whole components
	// ("ghcr.io/acme" covers "ghcr.io/acme/app", not "ghcr.io/acme-corp");
	// "" is every repository.
	Prefix string
	// Write allows pushes and deletes as well as reads.
	Write bool
}

// rules decides what a user may do to a repository. Matching the stored
// identity (upstream and path) rather than the request's spelling means
// ?ns=, a path prefix and library/ all meet the same rule.
type rules []Rule

func newRules(rs []Rule) rules {
	out := make(rules, len(rs))
	for i, r := range rs {
		r.Prefix = strings.TrimRight(r.Prefix, "/")
		out[i] = r
	}
	return out
}

// allows reports whether user may read (or, with write, write) repo.
// Without rules every user may do everything; with rules, only what one
// naming the user (or "*") grants.
func (rs rules) allows(user string, repo cache.Repo, write bool) bool {
	if len(rs) == 0 {
		return true
	}
	name := repo.String()
	for _, r := range rs {
		if r.User != "*" && !equalUser(r.User, user) {
			continue
		}
		if write && !r.Write {
			continue
		}
		if r.Prefix == "" || name == r.Prefix || strings.HasPrefix(name, r.Prefix+"/") {
			return true
		}
	}
	return false
}

// mayRead reports whether the client of r may read repo (the catalog
// lists only those).
func (s *server) mayRead(r *http.Request, repo cache.Repo) bool {
	if s.auth == nil {
		return true
	}
	user := infoFrom(r.Context()).user
	if user == "" {
		return s.auth.opts.AnonymousPull
	}
	return s.auth.allows(user, repo, false)
}

// authorize checks, on every route that names a repository, that the
// client may read it (GET, HEAD) or write it (anything else, and every
// upload route). An anonymous client got here only to read, with
// anonymous pulls on. A name that does not resolve is left to the
// handler, which explains it.
func (s *server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.auth == nil || vars(r)["name"] == "" {
			next.ServeHTTP(w, r)
			return
		}
		repo, err := s.repoOf(r)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		info := infoFrom(r.Context())
		write := (r.Method != http.MethodGet && r.Method != http.MethodHead) || info.route == routeUpload
		switch {
		case info.user == "" && !write: // anonymous read, allowed by admit
		case info.user != "" && s.auth.allows(info.user, repo, write):
		default:
			info.repo = repo.String()
			info.err = errDenied
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			writeError(w, r, errDenied)
			return
		}
		next.ServeHTTP(w, r)
	})
}
