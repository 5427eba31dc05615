package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
)

// storeFlags are what warm, export and import share with serve: the data
// directory and the upstream, read from the same YAML file and WHARF_*
// variables, with --data and --upstream on top. Sharing serve's settings
// is the point: the repository names these commands write must be the ones
// the serving wharf computes (its upstream's name, Docker Hub's library/
// rule), or what they store would never be found.
type storeFlags struct {
	config, data, upstream string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.config, "config", "", "wharf serve's YAML config file (WHARF_CONFIG)")
	fs.StringVar(&s.data, "data", "", "data directory (WHARF_DATA; default ./data)")
	fs.StringVar(&s.upstream, "upstream", "", "the upstream the serving wharf mirrors (WHARF_UPSTREAM; default Docker Hub)")
}

// load reads serve's configuration with these flags applied.
func (s *storeFlags) load(stderr io.Writer) (config.Config, error) {
	var args []string
	for _, kv := range [][2]string{{"config", s.config}, {"data", s.data}, {"upstream", s.upstream}} {
		if kv[1] != "" {
			args = append(args, "--"+kv[0], kv[1])
		}
	}
	return config.LoadWith(config.LoadOptions{Args: args, LookupEnv: os.LookupEnv, Output: stderr})
}

// quietLogger logs warnings and worse to w, for the store commands.
func quietLogger(w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	log.SetLevel(logrus.WarnLevel)
	return log
}

// imageRef is an image as the store names it.
type imageRef struct {
	Repo   cache.Repo
	Tag    string        // "" when given by digest only
	Digest digest.Digest // "" when given by tag
}

func (r imageRef) String() string {
	s := r.Repo.String()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// ref is what of r the cache's Manifest takes: the digest if given, else the tag.
func (r imageRef) ref() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// namer maps image names as people write them to the store's
// repositories and back. Its upstream is the default one serve uses.
type namer interface {
	Name() string
	Repository(path string) string
}

// parseImage reads "alpine", "alpine:3.20", "docker.io/library/alpine",
// "ghcr.io/o/r:v1", "name@sha256:…". A name without a registry belongs to
// the default upstream and follows its rules, just as a client pulling
// "alpine" through wharf does; so does one naming the default upstream.
// A name on another registry keeps that registry as its upstream, so a
// wharf mirroring it (several upstreams) finds it under its own name.
func parseImage(s string, up namer) (imageRef, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return imageRef{}, fmt.Errorf("image %q: %w", s, err)
	}
	var out imageRef
	if t, ok := named.(reference.Tagged); ok {
		out.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		out.Digest = d.Digest()
	}
	if out.Tag == "" && out.Digest == "" {
		out.Tag = "latest"
	}
	domain, path := reference.Domain(named), reference.Path(named)
	switch {
	case !explicitDomain(s):
		out.Repo = cache.Repo{Upstream: up.Name(), Path: up.Repository(reference.FamiliarName(named))}
	case domain == up.Name():
		out.Repo = cache.Repo{Upstream: up.Name(), Path: up.Repository(path)}
	default:
		out.Repo = cache.Repo{Upstream: domain, Path: path}
	}
	return out, nil
}

// explicitDomain applies docker's rule: the first of several components
// names a registry when it has a dot or a port, or is localhost.
func explicitDomain(s string) bool {
	first, rest, ok := strings.Cut(s, "/")
	if !ok || rest == "" {
		return false
	}
	return strings.ContainsAny(first, ".:") || first == "localhost"
}

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

// fullName is repo:tag with its registry, the form an OCI layout's
// ref.name annotations carry so an import on the far side knows it whole.
func fullName(repo cache.Repo, tag string) string {
	return repo.String() + ":" + tag
}

// openDataDir opens a stopped wharf's store with no upstream, for export
// and import (the index allows one process at a time).
func openDataDir(dir string, stderr io.Writer) (*cache.Cache, error) {
	c, err := cache.Open(cache.Options{Dir: dir, Logger: quietLogger(stderr)})
	if err != nil {
		return nil, dataDirError(dir, err)
	}
	return c, nil
}
