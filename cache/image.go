package cache

import "github.com/opencontainers/go-digest"

// Image is an image as the store names it: its repository, and the tag
// and digest given. It is what serve's router, warm, the pins, export
// and import read a client's image name into (proxy.ParseImage), one
// type so the commands pass it on as it is.
type Image struct {
	Repo   Repo
	Tag    string        // "" when given by digest only
	Digest digest.Digest // "" when given by tag
}

func (i Image) String() string {
	s := i.Repo.String()
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest.String()
	}
	return s
}

// Ref is what the store's Manifest takes: the digest if given, else the tag.
func (i Image) Ref() string {
	if i.Digest != "" {
		return i.Digest.String()
	}
	return i.Tag
}
