package proxy

import (
	"fmt"
	"strings"
)

// Upstreams resolves the registry a request is for. A repository's
// identity below the router is its upstream's Name plus its path, chosen
// here, at the edge, in this order (see repoOf):
//
//  1. containerd's ?ns=<registry> query parameter: Lookup(ns), and an ns
//     no upstream answers to is refused (DENIED) before anything is
//     fetched, never passed on to an arbitrary host;
//  2. a path prefix, /v2/<registry>/<path>/…, when the first component is
//     an upstream's name or its Prefix (for clients that cannot send ns;
//     docker and crane cannot parse a registry with a port there, so
//     "wharf:5000/local/app" stands for registry.local:5000's "app"); a
//     first component that looks like a registry host but is none of
//     them is refused (DENIED, naming the upstreams), not sent on;
//  3. the default upstream (the docker daemon's registry-mirrors, which
//     mirror Docker Hub only).
//
// Resolve applies this order, and the admin commands read image names
// through it too (ParseImage); imagename.go has the table.
type Upstreams interface {
	Default() Upstream
	Lookup(name string) (Upstream, bool)
}

// dockerHub is the registry name containerd sends for Docker Hub images.
const dockerHub = "docker.io"

// UpstreamSet is Upstreams over a fixed list.
type UpstreamSet struct {
	def    Upstream
	byName map[string]Upstream
	names  []string // as configured, the default first; no aliases
}

// NewUpstreamSet returns the set of def (the default) and more. Names are
// registry hosts, matched without regard to case; two upstreams with one
// name are an error.
//
// The default upstream also answers to "docker.io" (unless another
// upstream has that name): it is what the docker daemon's registry-mirrors
// and containerd's docker.io hosts.toml send to wharf, whatever registry
// stands in for Docker Hub (mirror.gcr.io, a site registry). Its cache
// identity stays its own name.
func NewUpstreamSet(def Upstream, more ...Upstream) (*UpstreamSet, error) {
	if def == nil {
		return nil, fmt.Errorf("proxy: a default upstream is required")
	}
	s := &UpstreamSet{def: def, byName: map[string]Upstream{}}
	all := append([]Upstream{def}, more...)
	for _, u := range all {
		key := strings.ToLower(u.Name())
		if _, dup := s.byName[key]; dup {
			return nil, fmt.Errorf("proxy: two upstreams are named %q", u.Name())
		}
		s.byName[key] = u
		s.names = append(s.names, u.Name())
	}
	// Prefixes after every name, so a prefix can never take a name's place.
	for _, u := range all {
		if err := s.addPrefix(u); err != nil {
			return nil, err
		}
	}
	if _, named := s.byName[dockerHub]; !named {
		s.byName[dockerHub] = def
	}
	return s, nil
}

// addPrefix makes u answer to its Prefix, when it has one: a single
// lower-case path component no other upstream answers to.
func (s *UpstreamSet) addPrefix(u Upstream) error {
	p, ok := u.(interface{ Prefix() string })
	if !ok || p.Prefix() == "" {
		return nil
	}
	prefix := p.Prefix()
	if strings.Contains(prefix, "/") || !anchoredName.MatchString(prefix) {
		return fmt.Errorf("proxy: upstream %q: prefix %q is not one lower-case path component", u.Name(), prefix)
	}
	if _, taken := s.byName[prefix]; taken || prefix == dockerHub {
		return fmt.Errorf("proxy: upstream %q: prefix %q already names an upstream", u.Name(), prefix)
	}
	s.byName[prefix] = u
	return nil
}

// Default is the upstream for names without ns or a registry prefix.
func (s *UpstreamSet) Default() Upstream { return s.def }

// Lookup finds the upstream named name (a registry host, "docker.io") or
// having name as its prefix.
func (s *UpstreamSet) Lookup(name string) (Upstream, bool) {
	u, ok := s.byName[strings.ToLower(name)]
	return u, ok
}

// Names lists every upstream's name, the default first, without the
// docker.io alias: the status page shows each from the start, before any
// request has gone to it.
func (s *UpstreamSet) Names() []string { return append([]string(nil), s.names...) }

// Prefixed is an upstream that also answers to Prefix, a short path
// component standing for its name in /v2/<prefix>/<path>/… (and in ?ns=).
// Its cache identity stays Name, so the prefix and the name meet the same
// cache entries and the same access rules.
type Prefixed struct {
	Upstream
	Alias string
}

// Prefix is the alias the upstream answers to besides its name.
func (p Prefixed) Prefix() string { return p.Alias }
