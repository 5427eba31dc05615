package bench

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// image is a parsed IMAGE argument: a repository on the registry under test
// and a tag or a digest in it.
type image struct {
	repo   string
	tag    string
	tagged bool // the tag was written, not the default "latest"
	digest digest.Digest
}

// ref is what goes after /manifests/: the digest if there is one (the
// daemon pulls by digest when given both), else the tag.
func (i image) ref() string {
	if i.digest != "" {
		return i.digest.String()
	}
	return i.tag
}

func (i image) String() string {
	if i.digest != "" {
		return i.repo + "@" + i.digest.String()
	}
	return i.repo + ":" + i.tag
}

// parseImage reads "repo[:tag][@digest]", with or without host (the
// registry's host:port) in front, with the reference grammar. Only an exact
// match of host is removed: a mirror may route by path prefix, so
// "docker.io/library/alpine" can be a repository path on it. No tag means
// "latest"; no "library/" is added, since that is Docker Hub's rule and not
// every registry's.
func parseImage(s, host string) (image, error) {
	r, err := reference.Parse(s)
	if err != nil {
		return image{}, fmt.Errorf("image %q: %w", s, err)
	}
	named, ok := r.(reference.Named)
	if !ok {
		return image{}, fmt.Errorf("image %q: no repository name", s)
	}
	img := image{repo: named.Name(), tag: "latest"}
	if first, rest, ok := strings.Cut(img.repo, "/"); ok && strings.EqualFold(first, host) {
		img.repo = rest
	}
	if t, ok := r.(reference.Tagged); ok {
		img.tag, img.tagged = t.Tag(), true
	}
	if d, ok := r.(reference.Digested); ok {
		img.digest = d.Digest()
	}
	return img, nil
}
