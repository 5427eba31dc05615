package archive

import (
	"github.com/distribution/reference"

	"github.com/wharf-mirror/wharf/cache"
)

// Name is an image as the store names it: its repository, and the tag
// and digest given ("" when not).
type Name = cache.Image

// A Namer reads an image name ("docker.io/library/alpine:3", "alpine")
// as the serving wharf reads it, so that what an import stores is where
// a pull looks and an export finds what was warmed; a name with neither
// tag nor digest is "latest". The naming rules (upstreams, prefixes,
// Docker Hub's library/) are the caller's: archive knows none of them.
// For a name on a registry the store does not serve, the error is a
// *NotServedError.
type Namer func(name string) (Name, error)

// NotServedError is a Namer's error for a name on a registry the store
// is not for. Import skips such an image with a warning rather than
// store it where no pull would look; export fails with it.
type NotServedError struct {
	Err    error // the whole error, naming the image
	Reason error // why, for a warning that names the image itself
}

func (e *NotServedError) Error() string { return e.Err.Error() }
func (e *NotServedError) Unwrap() error { return e.Err }

// displayName is how docker names repo:tag (Docker Hub's images in their
// short form, "alpine:3.20"): what docker load tags an exported image as.
func displayName(repo cache.Repo, tag string) string {
	full := repo.String() + ":" + tag
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(named)
}
