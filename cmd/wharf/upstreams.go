package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/statuspage"
	"github.com/wharf-mirror/wharf/upstream"
)

// upstreams are the registries one wharf mirrors: the default upstream
// first, then the configured upstreams list, each a client of its own
// (connections, tokens and pull budget are per registry).
type upstreams struct {
	clients []*upstream.Client
	origins []cache.Origin
	set     *proxy.UpstreamSet
	paths   []string // each client's config path, "upstream" or "upstreams[0]", for warnings
}

// newUpstreams builds a client per configured upstream. Timeout, retries
// and the health settings are the default upstream's for all.
func newUpstreams(cfg config.Config, m *metrics.Metrics, log logrus.FieldLogger) (*upstreams, error) {
	def := cfg.Upstream
	// spec is one upstream to build: the default and each upstreams entry
	// are the same Registry settings under another name.
	type spec struct {
		path   string // config field, for errors
		name   string
		reg    config.Registry
		ttl    time.Duration
		prefix string // upstreams[].prefix, the alias routed like the name
	}
	specs := []spec{{path: "upstream", name: def.Name, reg: def.Registry, ttl: def.TagTTL.Std()}}
	for i, u := range cfg.Upstreams {
		ttl := def.TagTTL
		if u.TagTTL != nil {
			ttl = *u.TagTTL
		}
		specs = append(specs, spec{path: fmt.Sprintf("upstreams[%d]", i), name: u.Name, reg: u.Registry, ttl: ttl.Std(), prefix: u.Prefix})
	}

	out := &upstreams{}
	var named []proxy.Upstream
	for _, s := range specs {
		o := upstream.Options{
			Name: s.name, URL: trimAPIPath(s.reg.URL, s.path, log),
			Username: s.reg.Username, Password: s.reg.Password.Value(), DockerConfig: s.reg.DockerConfig,
			CAFile: s.reg.CAFile, InsecureSkipVerify: s.reg.InsecureOn(), OfficialLibrary: s.reg.OfficialLibraryRule(),
		}
		o.Timeout, o.MaxRetries = def.Timeout.Std(), retries(def.Retries)
		o.DownAfter, o.StallAfter = def.DownAfter, def.StallAfter.Std()
		o.FarLatency = def.FarLatency.Std()
		o.Metrics, o.Logger, o.UserAgent = m, log.WithField("component", "upstream"), "wharf/"+version
		c, err := upstream.New(o)
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("%s: %w", s.path, err)
		}
		out.clients = append(out.clients, c)
		out.paths = append(out.paths, s.path)
		if s.reg.WriteThroughOn() {
			out.origins = append(out.origins, writableOrigin{c, s.ttl})
		} else {
			out.origins = append(out.origins, pullOrigin{c, s.ttl, s.reg.ShadowTagsOn()})
		}
		switch {
		case len(out.clients) == 1: // the default
		case s.prefix != "":
			named = append(named, proxy.Prefixed{Upstream: c, Alias: s.prefix})
		default:
			named = append(named, c)
		}
	}
	set, err := proxy.NewUpstreamSet(out.clients[0], named...)
	if err != nil {
		out.Close()
		return nil, err
	}
	out.set = set
	return out, nil
}

// Default is the default upstream's client.
func (u *upstreams) Default() *upstream.Client { return u.clients[0] }

// Names lists every upstream's name, the default first.
func (u *upstreams) Names() []string {
	names := make([]string, len(u.clients))
	for i, c := range u.clients {
		names[i] = c.Name()
	}
	return names
}

// statusPage builds the status page over these upstreams: a row for
// each from the start, its breaker's state, repositories named as
// clients pull them.
func (u *upstreams) statusPage(o statuspage.Options) (*statuspage.Page, error) {
	o.Upstreams = u.set.Names()
	o.Health = statuspage.BreakersOf(u.clients...)
	o.PullName = func(r cache.Repo) string { return proxy.ClientName(u.set, r) }
	return statuspage.New(o)
}

// Close releases every client's idle connections.
func (u *upstreams) Close() {
	for _, c := range u.clients {
		c.Close()
	}
}

// pullOrigin is an upstream the cache only reads from: embedding the
// Origin interface, not the client, hides the client's push methods, so
// pushes under its names stay on wharf (writethrough.Replicator is absent).
type pullOrigin struct {
	cache.Origin
	ttl    time.Duration
	shadow bool
}

func (o pullOrigin) TagTTL() time.Duration { return o.ttl }

// ShadowTags says whether pushes may replace the upstream's tags
// (push.TagShadower).
func (o pullOrigin) ShadowTags() bool { return o.shadow }

// GetBlobRange passes the client's ranges on (cache.BlobRanger), so that
// a big blob of a pull-only upstream is fetched in segments too.
func (o pullOrigin) GetBlobRange(ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
	return blobRange(o.Origin, ctx, repo, d, offset, length, first)
}

// nearRanger is an origin that serves ranges and knows whether it is
// near (upstream.Client).
type nearRanger interface {
	cache.BlobRanger
	Near() bool
}

// blobRange is o's ranges for fills, except that a fill's first request
// to a near upstream gets cache.ErrNoRanges, having asked nothing: the
// fill then streams the blob on one connection, which fills a near link,
// where segments would only add connections and CPU
// (upstream.Client.Near). Later ranges of a fill already segmenting go
// out whatever the upstream's latency has become.
func blobRange(o cache.Origin, ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
	r, ok := o.(cache.BlobRanger)
	if !ok {
		return nil, 0, false, cache.ErrNoRanges
	}
	if n, ok := o.(nearRanger); ok && first && n.Near() {
		return nil, 0, false, cache.ErrNoRanges
	}
	return r.GetBlobRange(ctx, repo, d, offset, length, first)
}

// writableOrigin is an upstream with write-through on: the whole client,
// a writethrough.Replicator.
type writableOrigin struct {
	*upstream.Client
	ttl time.Duration
}

func (o writableOrigin) TagTTL() time.Duration { return o.ttl }

// GetBlobRange is pullOrigin's: no segments from a near upstream.
func (o writableOrigin) GetBlobRange(ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
	return blobRange(o.Client, ctx, repo, d, offset, length, first)
}

// pins turns the config's "repo" and "repo:tag" entries, named as clients
// name them ("library/alpine", "ghcr.io/acme/app:v1"), into the cache's
// pins, read as a request without ?ns= is (proxy.ParseName).
func pins(refs []string, ups proxy.Upstreams) ([]cache.Pin, error) {
	out := make([]cache.Pin, 0, len(refs))
	for _, ref := range refs {
		img, err := proxy.ParseName(ups, ref)
		if err != nil {
			return nil, fmt.Errorf("storage.pin: %w", err)
		}
		if img.Digest != "" {
			return nil, fmt.Errorf("storage.pin: %q: a pin names a repository or a tag, not a digest", ref)
		}
		out = append(out, cache.Pin{Repo: img.Repo, Tag: img.Tag})
	}
	return out, nil
}

// warnUnserved warns at start of repositories the store holds under
// registries this configuration does not mirror: the router never names
// them, so they are never served (a store imported or filled under
// another --upstream). The index keeps one key per repository, so the
// check costs a key scan of the repositories, not of the content.
func warnUnserved(repos []cache.Repo, ups *proxy.UpstreamSet, offline bool, log logrus.FieldLogger) {
	unserved := map[string]int{}
	served := 0
	for _, r := range repos {
		if proxy.ClientName(ups, r) == "" {
			unserved[r.Upstream]++
		} else {
			served++
		}
	}
	if len(unserved) == 0 {
		return
	}
	var names []string
	for up, n := range unserved {
		names = append(names, fmt.Sprintf("%s (%d repositories)", up, n))
	}
	slices.Sort(names)
	msg := "the store holds repositories under registries this wharf does not mirror, and serves none of them: " +
		strings.Join(names, ", ") + "; give serve the configuration they were stored with " +
		"(the same config file as warm or import: upstream.url / upstream.name, or an upstreams entry with that name)"
	if offline && served == 0 {
		msg = "offline, and nothing in the store is under this wharf's upstreams: every pull will be a 404; " + msg
	}
	log.WithField("upstreams", strings.Join(ups.Names(), ",")).Warn(msg)
}
