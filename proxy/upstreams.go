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
//     an upstream's name (for clients that cannot send ns);
//  3. the default upstream (the docker daemon's registry-mirrors, which
//     mirror Docker Hub only).
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
	for _, u := range append([]Upstream{def}, more...) {
		key := strings.ToLower(u.Name())
		if _, dup := s.byName[key]; dup {
			return nil, fmt.Errorf("proxy: two upstreams are named %q", u.Name())
		}
		s.byName[key] = u
		s.names = append(s.names, u.Name())
	}
	if _, named := s.byName[dockerHub]; !named {
		s.byName[dockerHub] = def
	}
	return s, nil
}

// Default is the upstream for names without ns or a registry prefix.
func (s *UpstreamSet) Default() Upstream { return s.def }

// Lookup finds the upstream named name (a registry host, "docker.io").
func (s *UpstreamSet) Lookup(name string) (Upstream, bool) {
	u, ok := s.byName[strings.ToLower(name)]
	return u, ok
}

// Names lists every upstream's name, the default first, without the
// docker.io alias: the status page shows each from the start, before any
// request has gone to it.
func (s *UpstreamSet) Names() []string { return append([]string(nil), s.names...) }
