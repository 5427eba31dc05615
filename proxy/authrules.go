package proxy

import (
	"net/http"
	"strings"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/statuspage"
)

// Rule grants User read, or read and write, on the repositories under
// Prefix.
type Rule struct {
	// User is a user name, "*" for every authenticated user, or Anonymous
	// for clients without credentials ("*" does not include them).
	User string
	// Prefix is a repository as stored, "<registry>/<path>" such as
	// "docker.io/library" or "ghcr.io/acme", matched by whole components
	// ("ghcr.io/acme" covers "ghcr.io/acme/app", not "ghcr.io/acme-corp");
	// "" is every repository.
	Prefix string
	// Write allows pushes and deletes as well as reads.
	Write bool
}

// rules decides what a principal may do to a repository. Matching the
// stored identity (upstream and path) rather than the request's spelling
// means ?ns=, a path prefix and library/ all meet the same rule.
type rules []Rule

func newRules(rs []Rule) rules {
	out := make(rules, len(rs))
	for i, r := range rs {
		r.Prefix = strings.TrimRight(r.Prefix, "/")
		out[i] = r
	}
	return out
}

// grants reports whether a rule naming user (or "*", for a user) grants
// read (or, with write, write) on repo.
func (rs rules) grants(user string, repo cache.Repo, write bool) bool {
	name := repo.String()
	for _, r := range rs {
		switch {
		case r.User == "*" && user == Anonymous:
			continue
		case r.User != "*" && !equalUser(r.User, user):
			continue
		case write && !r.Write:
			continue
		}
		if r.Prefix == "" || name == r.Prefix || strings.HasPrefix(name, r.Prefix+"/") {
			return true
		}
	}
	return false
}

// allows reports whether user ("" for anonymous) may read (or, with
// write, write) repo. The switches open the door for anonymous clients
// (reads, pushes); rules, when there are any, then say where it leads,
// for users and anonymous clients alike. Without rules every user may do
// everything.
func (a *authenticator) allows(user string, repo cache.Repo, write bool) bool {
	if user == "" {
		if write && !a.opts.AnonymousPush || !write && !a.anonymousReads() {
			return false
		}
		user = Anonymous
	}
	if len(a.rules) == 0 {
		return true
	}
	return a.rules.grants(user, repo, write)
}

// readsAll reports whether user may read every repository: then a blob
// pushed anywhere may be mounted without naming where from.
func (a *authenticator) readsAll(user string) bool {
	switch {
	case user == "" && !a.anonymousReads():
		return false
	case len(a.rules) == 0:
		return true
	}
	return a.rules.grantsEverything(orAnonymous(user))
}

func (rs rules) grantsEverything(user string) bool {
	for _, r := range rs {
		if r.Prefix == "" && (equalUser(r.User, user) || r.User == "*" && user != Anonymous) {
			return true
		}
	}
	return false
}

func orAnonymous(user string) string {
	if user == "" {
		return Anonymous
	}
	return user
}

// mayRead reports whether the client of r may read repo (the catalog and
// the status page list only those).
func (s *server) mayRead(r *http.Request, repo cache.Repo) bool {
	return s.auth.allows(infoFrom(r.Context()).user, repo, false)
}

// authorize checks, on every route that names a repository, that the
// client may read it (GET, HEAD) or write it (anything else, and every
// upload route). An anonymous client refused is told to authenticate
// (401), a user is denied (403). A name that does not resolve is left to
// the handler, which explains it.
func (s *server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if vars(r)["name"] == "" {
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
		if s.auth.allows(info.user, repo, write) {
			next.ServeHTTP(w, r)
			return
		}
		info.repo = repo.String()
		switch {
		case info.user != "":
			info.err = errDenied
		case write && !s.auth.opts.AnonymousPush:
			info.err = errPushClosed
		default:
			info.err = errAuthRequired
		}
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		writeError(w, r, info.err)
	})
}

// withViewer tells the status page what the client of each request may
// see: the repositories the access rules let it read.
func (s *server) withViewer(page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := infoFrom(r.Context()).user
		v := statuspage.Viewer{
			ReadsAll: s.auth.readsAll(user),
			MayRead: func(name string) bool {
				up, path, ok := strings.Cut(name, "/")
				return ok && s.auth.allows(user, cache.Repo{Upstream: up, Path: path}, false)
			},
		}
		page.ServeHTTP(w, r.WithContext(statuspage.WithViewer(r.Context(), v)))
	})
}
