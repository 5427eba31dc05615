package peer

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

// The routes a replica serves its peers, all under Prefix and behind the
// cluster secret. The repository and its upstream travel in the query,
// so that no repository path (which may hold "blobs" or "manifests") is
// ever split against a route:
//
//	GET|HEAD /cluster/v1/blobs/<digest>?upstream=<name>&repo=<path>      Range: bytes=<n>-
//	GET|HEAD /cluster/v1/manifests/<tag|digest>?upstream=<name>&repo=<path>  Accept passed through
//	GET      /cluster/v1/tags?upstream=<name>&repo=<path>&n=<n>&last=<tag>
//	POST     /cluster/v1/pushed?upstream=<name>&repo=<path>              a push into a repository (announce.go)
const (
	Prefix        = "/cluster/v1/"
	blobsPath     = Prefix + "blobs/"
	manifestsPath = Prefix + "manifests/"
	tagsPath      = Prefix + "tags"
	pushedPath    = Prefix + "pushed"
)

// errInvalid: a peer request that is not well formed (400).
var errInvalid = errors.New("invalid peer request")

var (
	anchoredName   = regexp.MustCompile(`^(?:` + reference.NameRegexp.String() + `)$`)
	anchoredTag    = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)
	anchoredDomain = regexp.MustCompile(`^(?:` + reference.DomainRegexp.String() + `)$`)
)

// maxNameLength is the longest repository name the reference grammar allows.
const maxNameLength = 255

// parseRepo reads and validates the request's upstream and repository by
// the rules proxy applies to a client's name: the reference grammar's
// name, at most 255 characters, in lower case, with no registry part
// (':', '[', ']'); the upstream is a registry name (host[:port]).
func parseRepo(q url.Values) (cache.Repo, error) {
	up, path := q.Get("upstream"), q.Get("repo")
	if len(up) > maxNameLength || !anchoredDomain.MatchString(up) {
		return cache.Repo{}, fmt.Errorf("%w: upstream %.255q", errInvalid, up)
	}
	if len(path) > maxNameLength || !anchoredName.MatchString(path) ||
		strings.ContainsAny(path, ":[]") || strings.ToLower(path) != path {
		return cache.Repo{}, fmt.Errorf("%w: repository %.255q", errInvalid, path)
	}
	return cache.Repo{Upstream: up, Path: path}, nil
}

// parseRef validates a manifest reference: a digest or a tag.
func parseRef(ref string) (string, error) {
	if _, err := digest.Parse(ref); err == nil {
		return ref, nil
	}
	if anchoredTag.MatchString(ref) {
		return ref, nil
	}
	return "", fmt.Errorf("%w: reference %.255q", errInvalid, ref)
}

// parseDigest validates a blob's digest.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: digest %.255q: %w", errInvalid, s, err)
	}
	return d, nil
}

// parseTagsQuery reads a tag list's n (absent: -1, no limit) and last.
func parseTagsQuery(q url.Values) (n int, last string, err error) {
	n = -1
	if s := q.Get("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			return 0, "", fmt.Errorf("%w: n %.32q", errInvalid, s)
		}
	}
	last = q.Get("last")
	if last != "" && !anchoredTag.MatchString(last) {
		return 0, "", fmt.Errorf("%w: last %.255q", errInvalid, last)
	}
	return n, last, nil
}

// repoQuery is the query naming upstream and repo.
func repoQuery(upstream, repo string) url.Values {
	return url.Values{"upstream": {upstream}, "repo": {repo}}
}
