package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/oci"
)

// The records a cache shares with the other replicas (Options.Records),
// by key:
//
//	tags/<upstream>/<path>/<tag>                 a pushed tag: sharedTag
//	links/<algorithm>/<hex>/<upstream>/<path>    repository <upstream>/<path> may serve the digest: sharedLink
//	mirror/<upstream>/<path>/<tag>/<accept hash> what the upstream said repo:tag is, and when: sharedMirror
//	referrers/<upstream>/<path>/<subject algorithm>/<subject hex>/<algorithm>/<hex>
//	                                             a manifest pushed to repo refers to subject: its descriptor
//	repos/<upstream>/<path>                      a manifest was pushed to repo: the catalog lists it
//	evicting/<algorithm>/<hex>                   the replica leading eviction is deleting the digest: sharedEvicting
//	access/<replica>                             what a replica read lately and holds open: sharedAccess
//
// <upstream> and <path> are each one path-escaped segment (url.PathEscape
// turns "/" into %2F and "%" into %25), so the encoding is one-to-one and
// no repository name or tag can make a key outside its repository's: a
// listing of tags/docker.io/team%2Fa/ holds team/a's tags and nobody
// else's, whatever team/a/b or team%2Fa push. Links are keyed by digest
// first, so that "does any repository still link d?" (before content
// leaves the bucket) is one listing, and a rebuild meets every link of
// one digest together. A subject's referrers in one repository are one
// listing, and the catalog one listing of repos/ (a record per
// repository, not per tag or link: its cost follows the repositories).
// <accept hash> is the first 16 hex digits of the sha256 of the Accept
// set's key (acceptKey), which the record holds.

const (
	sharedTagsDir   = "tags/"
	sharedLinksDir  = "links/"
	sharedMirrorDir = "mirror/"
	sharedRefersDir = "referrers/"
	sharedReposDir  = "repos/"
	// Eviction's handshake with pushes (sharedevicting.go) and the
	// replicas' reports of their reads (sharedaccess.go): neither is
	// rebuilt into an index.
	sharedEvictingDir = "evicting/"
	sharedAccessDir   = "access/"
)

// sharedTag is a pushed tag's record.
type sharedTag struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Pushed    time.Time     `json:"pushed"`
}

// sharedLink is a link's record: what a replica that learns the link
// needs to know of the content without reading it.
type sharedLink struct {
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"` // set for manifests
	Pinned    bool   `json:"pinned,omitempty"`    // pushed or imported: never evicted
}

// sharedMirror is a mirrored tag's record, stamped when the upstream last
// said so.
type sharedMirror struct {
	Accept    string        `json:"accept"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Checked   time.Time     `json:"checked"`
}

// repoSegments is repo as two key segments; a repository with an empty
// upstream or path has none.
func repoSegments(repo Repo) (string, error) {
	if repo.Upstream == "" || repo.Path == "" {
		return "", fmt.Errorf("repository %q: no record key for an empty upstream or path", repo)
	}
	return url.PathEscape(repo.Upstream) + "/" + url.PathEscape(repo.Path), nil
}

// checked returns key if records.CheckKey takes it.
func checked(key string) (string, error) {
	if err := records.CheckKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// checkedPrefix returns a listing prefix if records.CheckPrefix takes it.
func checkedPrefix(prefix string) (string, error) {
	if err := records.CheckPrefix(prefix); err != nil {
		return "", err
	}
	return prefix, nil
}

func tagSegment(tag string) (string, error) {
	if !oci.ValidTag(tag) {
		return "", fmt.Errorf("tag %q: %w", tag, ErrTagInvalid)
	}
	return url.PathEscape(tag), nil
}

// sharedTagsPrefix is the listing prefix of repo's pushed tags.
func sharedTagsPrefix(repo Repo) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	return checkedPrefix(sharedTagsDir + r + "/")
}

func sharedTagKey(repo Repo, tag string) (string, error) {
	p, err := sharedTagsPrefix(repo)
	if err != nil {
		return "", err
	}
	t, err := tagSegment(tag)
	if err != nil {
		return "", err
	}
	return checked(p + t)
}

// sharedHoldersPrefix is the listing prefix of d's links.
func sharedHoldersPrefix(d digest.Digest) (string, error) {
	s, err := digestSegments(d)
	if err != nil {
		return "", err
	}
	return checkedPrefix(sharedLinksDir + s + "/")
}

func sharedLinkKey(repo Repo, d digest.Digest) (string, error) {
	p, err := sharedHoldersPrefix(d)
	if err != nil {
		return "", err
	}
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	return checked(p + r)
}

func sharedMirrorPrefix(repo Repo, tag string) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	t, err := tagSegment(tag)
	if err != nil {
		return "", err
	}
	return checkedPrefix(sharedMirrorDir + r + "/" + t + "/")
}

func sharedMirrorKey(repo Repo, tag, accept string) (string, error) {
	p, err := sharedMirrorPrefix(repo, tag)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(accept))
	return checked(p + hex.EncodeToString(h[:8]))
}

// digestSegments is d as two key segments, algorithm then hex.
func digestSegments(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w", d, err)
	}
	return d.Algorithm().String() + "/" + d.Encoded(), nil
}

// sharedReferrersPrefix is the listing prefix of the referrers of
// subject in repo.
func sharedReferrersPrefix(repo Repo, subject digest.Digest) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	s, err := digestSegments(subject)
	if err != nil {
		return "", err
	}
	return checkedPrefix(sharedRefersDir + r + "/" + s + "/")
}

func sharedReferrerKey(repo Repo, subject, d digest.Digest) (string, error) {
	p, err := sharedReferrersPrefix(repo, subject)
	if err != nil {
		return "", err
	}
	s, err := digestSegments(d)
	if err != nil {
		return "", err
	}
	return checked(p + s)
}

// sharedEvictingKey is the record the leader of eviction holds while it
// deletes d.
func sharedEvictingKey(d digest.Digest) (string, error) {
	s, err := digestSegments(d)
	if err != nil {
		return "", err
	}
	return checked(sharedEvictingDir + s)
}

// sharedAccessKey is replica's report of its reads; the name (a peer
// address, host:port) is one path-escaped segment.
func sharedAccessKey(replica string) (string, error) {
	if replica == "" {
		return "", fmt.Errorf("access record: no replica name")
	}
	return checked(sharedAccessDir + url.PathEscape(replica))
}

func sharedRepoKey(repo Repo) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	return checked(sharedReposDir + r)
}

// sharedKey is a record key taken apart: its kind (one of the dirs), its
// repository, and the tag or digest it is about.
type sharedKey struct {
	kind    string
	repo    Repo
	tag     string
	digest  digest.Digest
	subject digest.Digest // of a referrer
}

// parseSharedKey takes a listed key apart; false for a key no builder
// above makes (another writer's, or a hostile one), which is skipped.
func parseSharedKey(key string) (sharedKey, bool) {
	seg := strings.Split(key, "/")
	repoAt := func(i int) (Repo, bool) {
		up, err1 := url.PathUnescape(seg[i])
		path, err2 := url.PathUnescape(seg[i+1])
		r := Repo{Upstream: up, Path: path}
		if err1 != nil || err2 != nil || up == "" || path == "" {
			return r, false
		}
		// Only the canonical spelling: a key that unescapes to a
		// repository whose own key differs was not written by us.
		s, err := repoSegments(r)
		return r, err == nil && s == seg[i]+"/"+seg[i+1]
	}
	var k sharedKey
	var ok bool
	switch {
	case len(seg) == 4 && seg[0]+"/" == sharedTagsDir:
		k.kind = sharedTagsDir
		k.repo, ok = repoAt(1)
		k.tag = seg[3]
		ok = ok && oci.ValidTag(k.tag)
	case len(seg) == 5 && seg[0]+"/" == sharedLinksDir:
		k.kind = sharedLinksDir
		k.digest = digest.NewDigestFromEncoded(digest.Algorithm(seg[1]), seg[2])
		k.repo, ok = repoAt(3)
		ok = ok && k.digest.Validate() == nil
	case len(seg) == 5 && seg[0]+"/" == sharedMirrorDir:
		k.kind = sharedMirrorDir
		k.repo, ok = repoAt(1)
		k.tag = seg[3]
		ok = ok && oci.ValidTag(k.tag)
	case len(seg) == 7 && seg[0]+"/" == sharedRefersDir:
		k.kind = sharedRefersDir
		k.repo, ok = repoAt(1)
		k.subject = digest.NewDigestFromEncoded(digest.Algorithm(seg[3]), seg[4])
		k.digest = digest.NewDigestFromEncoded(digest.Algorithm(seg[5]), seg[6])
		ok = ok && k.subject.Validate() == nil && k.digest.Validate() == nil
	case len(seg) == 3 && seg[0]+"/" == sharedReposDir:
		k.kind = sharedReposDir
		k.repo, ok = repoAt(1)
	}
	return k, ok
}

// sharedMirroredDir holds a record per repository any replica mirrored a
// tag of, mirrored/<upstream>/<path>, for every replica's catalog
// (sharedcatalog.go): one record per repository, as repos/ is for pushed
// ones, so the catalog's listing follows the repositories, not the tags.
const sharedMirroredDir = "mirrored/"

func sharedMirroredKey(repo Repo) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	return checked(sharedMirroredDir + r)
}

// sharedMirrorRepoPrefix is the listing prefix of every mirrored tag
// record of repo, whatever the tag.
func sharedMirrorRepoPrefix(repo Repo) (string, error) {
	r, err := repoSegments(repo)
	if err != nil {
		return "", err
	}
	return checkedPrefix(sharedMirrorDir + r + "/")
}
