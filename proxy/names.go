package proxy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// maxNameLength is the longest repository name the reference grammar allows.
const maxNameLength = 255

// repoOf resolves the request's {name} to the repository it stands for. The
// route already matched the reference grammar's name; on the server a name
// is only a path, so the grammar's optional registry part (upper case, a
// port, an IPv6 address) is refused here.
func (s *server) repoOf(vars map[string]string) (cache.Repo, error) {
	name := vars["name"]
	if len(name) > maxNameLength || strings.ContainsAny(name, ":[]") || strings.ToLower(name) != name {
		return cache.Repo{}, fmt.Errorf("%q: %w", name, errNameInvalid)
	}
	up := s.opts.Upstream
	return cache.Repo{Upstream: up.Name(), Path: up.Repository(name)}, nil
}

// shapePattern tells what an unmatched v2 path was trying to be, so the
// client learns which part was wrong.
var shapePattern = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags)/([^/]*)$`)

var (
	anchoredName = regexp.MustCompile(`^(?:` + reference.NameRegexp.String() + `)$`)
	anchoredTag  = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)
)

func explainUnmatched(path string) error {
	m := shapePattern.FindStringSubmatch(path)
	if m == nil {
		return fmt.Errorf("%s: %w", path, errNotFoundRoute)
	}
	name, kind, ref := m[1], m[2], m[3]
	if !anchoredName.MatchString(name) || len(name) > maxNameLength {
		return fmt.Errorf("%q: %w", name, errNameInvalid)
	}
	switch kind {
	case "blobs":
		if _, err := digest.Parse(ref); err != nil {
			return fmt.Errorf("%q: %w: %v", ref, errDigestInvalid, err)
		}
	case "manifests":
		if strings.Contains(ref, ":") {
			if _, err := digest.Parse(ref); err != nil {
				return fmt.Errorf("%q: %w: %v", ref, errDigestInvalid, err)
			}
		} else if !anchoredTag.MatchString(ref) {
			return fmt.Errorf("%q: %w", ref, errTagInvalid)
		}
	}
	return fmt.Errorf("%s: %w", path, errNotFoundRoute)
}

// vars is mux.Vars, named for readability at call sites.
var vars = mux.Vars
