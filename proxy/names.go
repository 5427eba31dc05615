package proxy

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// maxNameLength is the longest repository name the reference grammar allows.
const maxNameLength = 255

// quoted is s quoted for an error message, cut past maxNameLength: a
// client's name or ?ns= is bounded only by the request line (1 MB), and
// the error goes back in the body, into the log and to the status page's
// hook, which would run its redaction over all of it.
func quoted(s string) string {
	if len(s) <= maxNameLength {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:maxNameLength], len(s))
}

// repoOf resolves the request's {name} to the repository it stands for
// (see Resolve).
func (s *server) repoOf(r *http.Request) (cache.Repo, error) {
	return s.resolve(r, vars(r)["name"])
}

// resolve is repoOf for any name the request carries.
func (s *server) resolve(r *http.Request, name string) (cache.Repo, error) {
	return Resolve(s.upstreams, r.URL.Query().Get("ns"), name)
}

// repoIn names path in up. The route matched the reference grammar's name;
// on the server a name below its registry is only a path, so the
// grammar's optional registry part (upper case, a port, an IPv6 address)
// is refused here.
func repoIn(up Upstream, path string) (cache.Repo, error) {
	if strings.ContainsAny(path, ":[]") || strings.ToLower(path) != path {
		return cache.Repo{}, fmt.Errorf("%q: %w", path, errNameInvalid)
	}
	return cache.Repo{Upstream: up.Name(), Path: up.Repository(path)}, nil
}

// shapePattern tells what an unmatched v2 path was trying to be, so the
// client learns which part was wrong.
var shapePattern = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags)/([^/]*)$`)

var anchoredName = regexp.MustCompile(`^(?:` + reference.NameRegexp.String() + `)$`)

func explainUnmatched(path string) error {
	m := shapePattern.FindStringSubmatch(path)
	if m == nil {
		return fmt.Errorf("%s: %w", path, errNotFoundRoute)
	}
	name, kind, ref := m[1], m[2], m[3]
	if len(name) > maxNameLength || !anchoredName.MatchString(name) {
		return fmt.Errorf("%s: %w", quoted(name), errNameInvalid)
	}
	switch kind {
	case "blobs":
		if _, err := digest.Parse(ref); err != nil {
			return fmt.Errorf("%s: %w: %v", quoted(ref), errDigestInvalid, err)
		}
	case "manifests":
		if strings.Contains(ref, ":") {
			if _, err := digest.Parse(ref); err != nil {
				return fmt.Errorf("%s: %w: %v", quoted(ref), errDigestInvalid, err)
			}
		} else if !oci.ValidTag(ref) {
			return fmt.Errorf("%s: %w", quoted(ref), errTagInvalid)
		}
	}
	return fmt.Errorf("%s: %w", path, errNotFoundRoute)
}

// vars is mux.Vars, named for readability at call sites.
var vars = mux.Vars

// target resolves the request's repository and its {key} reference (a tag
// or a digest), checks a digest's syntax, and names both for the access log.
func (s *server) target(r *http.Request, key string) (cache.Repo, string, error) {
	repo, err := s.repoOf(r)
	if err != nil {
		return cache.Repo{}, "", err
	}
	ref := vars(r)[key]
	info := infoFrom(r.Context())
	info.repo, info.ref = repo.String(), ref
	if strings.Contains(ref, ":") {
		if _, err := digest.Parse(ref); err != nil {
			return repo, ref, errDigest(ref, err)
		}
	}
	return repo, ref, nil
}

// digestTarget is target for routes whose {digest} must be a digest.
func (s *server) digestTarget(r *http.Request) (cache.Repo, digest.Digest, error) {
	repo, ref, err := s.target(r, "digest")
	if err != nil {
		return repo, "", err
	}
	d, err := digest.Parse(ref)
	if err != nil {
		return repo, "", errDigest(ref, err)
	}
	return repo, d, nil
}

// mountSource is a mount's ?from= repository, when the client named one it
// may read; nil otherwise (the store then mounts only what the target's own
// upstream vouches for).
func (s *server) mountSource(r *http.Request) *cache.Repo {
	from := r.URL.Query().Get("from")
	if from == "" {
		return nil
	}
	if !anchoredName.MatchString(from) {
		return nil
	}
	repo, err := s.resolve(r, from)
	if err != nil || !s.mayRead(r, repo) {
		return nil
	}
	return &repo
}
