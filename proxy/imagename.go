package proxy

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/wharf-mirror/wharf/cache"
)

// One name, one parser. An image has the name a client pulling it through
// wharf gives it, in every command: serve's router (Resolve), warm,
// export, import and the pins (ParseImage, which is Resolve after the
// reference grammar has split off the tag and digest), and back (ClientName).
//
//	name                           upstream             path there
//	alpine                         the default          Repository("alpine"): library/alpine on Docker Hub, alpine elsewhere
//	library/alpine                 the default          library/alpine (on every registry)
//	ghcr.io/acme/app               ghcr.io, if configured; else an error naming the upstreams
//	local/team/app                 the upstream whose prefix is "local"
//	docker.io/library/alpine       the default (its docker.io alias), unless an upstream is named docker.io
//	team/app?ns=quay.io            quay.io (?ns= reaches the router only), the whole name its path
//
// A first component that looks like a registry host (a dot, a colon, or
// "localhost", docker's rule) but names no upstream is refused rather
// than read as a path on the default: a client writing
// wharf/ghcr.io/acme/app means ghcr.io, and the default registry would
// answer with a misleading "unauthorized" (Docker Hub) or, worse, with an
// image of that name. A repository of the default upstream whose path
// begins so is reached with the default's name (or docker.io) in front,
// or with ?ns=.

// Image is an image as the store names it (ParseImage makes the tag
// "latest" when neither tag nor digest is given).
type Image = cache.Image

// UnknownRegistryError is a name whose first component is a registry
// host no upstream answers to. It is errUnknownNamespace for the router.
type UnknownRegistryError struct {
	Registry string
	Known    []string // the configured upstreams' names, the default first
}

func (e *UnknownRegistryError) Error() string {
	known := ""
	if len(e.Known) > 0 {
		known = " (its upstreams: " + strings.Join(e.Known, ", ") + ")"
	}
	return fmt.Sprintf("registry %s is not an upstream of this wharf%s: add it to the config's upstreams "+
		"(upstreams: [{name: %s, url: https://%s}], or --upstreams %s=https://%s); "+
		"a path on the default upstream that starts so is named with the default's name in front",
		e.Registry, known, e.Registry, e.Registry, e.Registry, e.Registry)
}

func (e *UnknownRegistryError) Unwrap() error { return errUnknownNamespace }

// Resolve reads name, the repository part of a request's /v2/<name>/…
// or of an image name, as serve's router does: with ns (containerd's
// ?ns=, "" when absent) the upstream it names and name as the path;
// otherwise a first component that is an upstream's name, prefix or
// docker.io alias chooses that upstream, and the default gets the rest.
// The upstream's naming rule (Repository) makes the path.
func Resolve(ups Upstreams, ns, name string) (cache.Repo, error) {
	if len(name) > maxNameLength {
		return cache.Repo{}, fmt.Errorf("%s: %w", quoted(name), errNameInvalid)
	}
	if ns != "" {
		up, ok := ups.Lookup(ns)
		if !ok {
			return cache.Repo{}, fmt.Errorf("ns=%s: %w", quoted(ns), errUnknownNamespace)
		}
		return repoIn(up, name)
	}
	if first, rest, ok := strings.Cut(name, "/"); ok {
		if up, ok := ups.Lookup(first); ok {
			return repoIn(up, rest)
		}
		if looksLikeRegistry(first) {
			return cache.Repo{}, &UnknownRegistryError{Registry: first, Known: namesOf(ups)}
		}
	}
	return repoIn(ups.Default(), name)
}

// looksLikeRegistry is docker's rule for a name's first component: a
// registry host when it has a dot or a port, or is localhost.
func looksLikeRegistry(component string) bool {
	return strings.ContainsAny(component, ".:") || component == "localhost"
}

func namesOf(ups Upstreams) []string {
	if n, ok := ups.(interface{ Names() []string }); ok {
		return n.Names()
	}
	return []string{ups.Default().Name()}
}

// ParseImage reads an image name as a client pulling it through wharf
// names it: "alpine", "alpine:3.20", "library/alpine@sha256:…",
// "ghcr.io/acme/app:v1", "local/team/app" (a prefix). The reference
// grammar splits off the tag and digest; Resolve reads the rest. Neither
// tag nor digest is "latest".
func ParseImage(ups Upstreams, s string) (Image, error) {
	img, err := ParseName(ups, s)
	if err == nil && img.Tag == "" && img.Digest == "" {
		img.Tag = "latest"
	}
	return img, err
}

// ParseName is ParseImage without the "latest" default: a repository
// alone has neither tag nor digest (a pin of every tag).
func ParseName(ups Upstreams, s string) (Image, error) {
	ref, err := reference.Parse(s)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w", s, err)
	}
	named, ok := ref.(reference.Named)
	if !ok {
		return Image{}, fmt.Errorf("image %q: %w", s, reference.ErrNameEmpty)
	}
	var img Image
	if t, ok := ref.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := ref.(reference.Digested); ok {
		img.Digest = d.Digest()
	}
	if img.Repo, err = Resolve(ups, "", named.Name()); err != nil {
		return Image{}, fmt.Errorf("image %q: %w", s, err)
	}
	return img, nil
}

// ClientName is how a client names repo through wharf, so that
// ParseImage (and the router) read it back as repo: its path for the
// default upstream, unless the path's first component would be read as a
// registry; for another upstream its prefix, or else its name, in front.
// It is "" for a repository of an upstream no longer configured.
func ClientName(ups Upstreams, repo cache.Repo) string {
	def := ups.Default()
	if strings.EqualFold(repo.Upstream, def.Name()) && !claimed(ups, repo.Path) {
		return repo.Path
	}
	up, ok := ups.Lookup(repo.Upstream)
	if !ok || !strings.EqualFold(up.Name(), repo.Upstream) {
		return ""
	}
	if p, ok := up.(interface{ Prefix() string }); ok && p.Prefix() != "" {
		return p.Prefix() + "/" + repo.Path
	}
	return up.Name() + "/" + repo.Path
}

// claimed tells whether Resolve would read path's first component as a
// registry rather than as part of a path on the default.
func claimed(ups Upstreams, path string) bool {
	first, _, ok := strings.Cut(path, "/")
	if !ok {
		return false
	}
	_, named := ups.Lookup(first)
	return named || looksLikeRegistry(first)
}
