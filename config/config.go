package config

import (
	"strings"
	"time"
)

// Config is everything `wharf serve` needs to start. Build it with Load, or
// start from Default in tests. Field comments state the default.
type Config struct {
	// Listen is the address the registry API is served on, host:port.
	// Default ":5000", the port docker and containerd expect of a mirror.
	Listen   string   `yaml:"listen"`
	Upstream Upstream `yaml:"upstream"`
	Storage  Storage  `yaml:"storage"`
	Push     Push     `yaml:"push"`
	Log      Log      `yaml:"log"`
	Debug    Debug    `yaml:"debug"`
	Auth     Auth     `yaml:"auth"`
	TLS      TLS      `yaml:"tls"`
	// Cluster makes this wharf a replica of several; off by default.
	Cluster Cluster `yaml:"cluster"`

	// Upstreams are further registries mirrored besides Upstream, reached
	// by containerd's ?ns= or a path prefix (see NamedUpstream). Default
	// none.
	Upstreams []NamedUpstream `yaml:"upstreams"`

	// Offline makes wharf contact no upstream: it serves what its store
	// holds (imported with wharf import, pushed, or cached earlier) and
	// answers anything else with a 404 saying it is offline. For
	// air-gapped sites. nil (the default) is off.
	Offline *bool `yaml:"offline"`
}

// OfflineOn reports whether the offline switch is on (nil means off).
func (c Config) OfflineOn() bool { return c.Offline != nil && *c.Offline }

// Upstream is the registry that cache misses are fetched from.
type Upstream struct {
	// Name is the registry host clients use for this upstream in ?ns= and
	// path prefixes, and its name in the cache. Default "": the URL's host,
	// "docker.io" for Docker Hub's API hosts.
	Name string `yaml:"name"`
	// Registry says how to reach it (URL default
	// "https://registry-1.docker.io", Docker Hub's API host). Anonymous on
	// Docker Hub means the lower anonymous pull limit.
	Registry `yaml:",inline"`
	// TagTTL is how long a cached tag is trusted before a HEAD to the
	// upstream revalidates it. 0 revalidates on every request. Default 5m.
	// An upstreams entry may set its own.
	TagTTL Duration `yaml:"tagTTL"`
	// RevalidateTimeout is how long a pull of a cached tag older than its
	// TTL waits for the upstream's answer; past it the cached manifest is
	// served (counted in wharf_stale_served_total) and the revalidation
	// finishes in the background. Must be > 0. Default 3s.
	RevalidateTimeout Duration `yaml:"revalidateTimeout"`
	// Timeout bounds the wait for response headers of one upstream request;
	// the body may stream for longer. Must be > 0. Default 30s. It and the
	// settings below apply to every upstream.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many times a failed upstream request is retried, 0..20.
	// Default 4.
	Retries int `yaml:"retries"`
	// DownAfter is how many consecutive failed requests (connection
	// errors, 5xx, StallAfter without response headers) mark an upstream
	// down: misses then fail at once with 503 and revalidations serve the
	// cached tag without asking, until a background probe succeeds.
	// 1..100, default 3.
	DownAfter int `yaml:"downAfter"`
	// StallAfter is how long a request may wait for response headers
	// before it counts as a failure toward DownAfter, and again for each
	// StallAfter more (the request itself still waits up to Timeout); it
	// is also the probe's timeout. It is what makes a hung upstream known
	// within seconds. Must be > 0 and at most Timeout. Default 3s.
	StallAfter Duration `yaml:"stallAfter"`
	// WriteThroughSync makes a client's manifest PUT wait until the
	// upstream has it (write-through must be on). nil (the default) is off:
	// pushes are passed on in the background.
	WriteThroughSync *bool `yaml:"writeThroughSync"`
	// Prefetch fetches an image's config and layers as soon as a client
	// GETs an image manifest wharf fetched for it (or that a HEAD just
	// made it fetch), before the client asks for them (package prefetch);
	// never while the upstream is down or rate-limiting or the cache is
	// past its high watermark. nil (the default) is on.
	Prefetch *bool `yaml:"prefetch"`
	// PrefetchConcurrency is how many blobs prefetch fetches at once per
	// upstream, 1..64. Default 8.
	PrefetchConcurrency int `yaml:"prefetchConcurrency"`
	// SegmentThreshold: a blob larger than this is fetched as up to
	// Segments concurrent Range requests into its one fill (cache/fill);
	// one connection to a registry far away is capped well below the
	// link. 0 turns it off. Default 16MiB.
	SegmentThreshold ByteSize `yaml:"segmentThreshold"`
	// Segments is how many ranges of one blob are fetched at once, 1..16
	// (1: one stream per blob). Default 4.
	Segments int `yaml:"segments"`
	// FarLatency: an upstream whose registry answers faster than this
	// (the least time to first byte over the last few minutes,
	// wharf_upstream_first_byte_seconds) is near, and gets neither prefetch
	// nor segmented fetch: one connection per blob already fills a near
	// link, and the extra connections only cost CPU and reorder what
	// clients wait for. 0 treats every upstream as far. Default 10ms.
	FarLatency Duration `yaml:"farLatency"`
}

// PrefetchOn reports whether prefetch is on (nil means yes).
func (u Upstream) PrefetchOn() bool { return u.Prefetch == nil || *u.Prefetch }

// WriteThroughSyncOn reports whether writeThroughSync is set: a manifest
// push under any upstream with write-through on waits for that upstream.
func (u Upstream) WriteThroughSyncOn() bool { return u.WriteThroughSync != nil && *u.WriteThroughSync }

// Push configures what clients may write to wharf.
type Push struct {
	// Deletes allows DELETE of manifests, pushed tags and blobs. nil (the
	// default) means true; false answers every delete with 405 UNSUPPORTED.
	Deletes *bool `yaml:"deletes"`
	// UploadExpiry is how long a blob upload may go without a chunk before
	// it is removed. At least 1s. Default 1h: clients push a layer in one
	// request or a quick run of chunks (docker finishes in minutes and
	// starts a new session rather than resume an old one), and an
	// abandoned session holds a slot of MaxUploadsPerClient until it
	// expires.
	UploadExpiry Duration `yaml:"uploadExpiry"`
	// MaxUploads caps the blob upload sessions open at once, all clients
	// together; past it a new one is answered 429 TOOMANYREQUESTS. Must be
	// > 0. Default 1000.
	MaxUploads int `yaml:"maxUploads"`
	// MaxUploadsPerClient caps the sessions one client holds at once: a
	// user, or a client without credentials by its address. Must be > 0
	// and at most MaxUploads. Default 100 (docker uploads 5 layers at once
	// per push: 20 concurrent pushes).
	MaxUploadsPerClient int `yaml:"maxUploadsPerClient"`
	// ChunkBuffers caps the memory that upload chunks of unknown length
	// (no Content-Length) take at once with storage.s3: each is staged one
	// part (storage.s3.partSize) at a time while it streams, and a request
	// past the cap waits for a part's room, at most 30s, then is answered
	// 503 UNAVAILABLE (clients retry it); one client takes at most
	// half the parts, and a body filling its part slower than 8KiB/s
	// is cut. A chunk whose Content-Length passes the part
	// size takes a part too. It counts per replica. Must be > 0; at least
	// one part is always allowed. Default 256MiB (16 parts of 16MiB).
	ChunkBuffers ByteSize `yaml:"chunkBuffers"`
	// BodyIdleTimeout closes a request whose body sends no byte for this
	// long (an upload keeps the chunks it acknowledged). It bounds the
	// silence between bytes, not the length of a body, so slow links are
	// not cut. Must be > 0. Default 30s.
	BodyIdleTimeout Duration `yaml:"bodyIdleTimeout"`
}

// DeletesEnabled reports whether deletes are allowed (nil means yes).
func (p Push) DeletesEnabled() bool { return p.Deletes == nil || *p.Deletes }

// Storage is where cached content lives.
type Storage struct {
	// Dir is the data directory. Default "./data".
	Dir string `yaml:"dir"`
	// MaxSize caps the bytes of cached content; 0 (the default) is
	// unlimited. With S3 on, the content is in the bucket (capped by
	// S3.MaxSize) and MaxSize caps the copies of it kept in Dir, the
	// local tier.
	MaxSize ByteSize `yaml:"maxSize"`
	// HighWatermark is the percentage of MaxSize (S3.MaxSize with S3 on)
	// at which eviction starts, 1..100. Default 95.
	HighWatermark int `yaml:"highWatermark"`
	// LowWatermark is the percentage of MaxSize (S3.MaxSize with S3 on)
	// eviction frees down to, below HighWatermark. Default 85.
	LowWatermark int `yaml:"lowWatermark"`
	// Pin lists, comma-separated, repositories ("library/alpine": every
	// tag) or tags ("library/nginx:1.27") that eviction never removes, as
	// clients name them. Default "" (nothing pinned beyond pushed content).
	Pin string `yaml:"pin"`
	// S3, when set, keeps the content in an S3-compatible store; the
	// index stays in Dir. Default off (see S3.On).
	S3 S3 `yaml:"s3"`
}

// Log configures logrus.
type Log struct {
	// Level is a logrus level name: trace, debug, info, warn, warning,
	// error, fatal or panic. Default "info".
	Level string `yaml:"level"`
	// Format is "text" or "json". Default "text".
	Format string `yaml:"format"`
}

// Debug configures the diagnostics listener.
type Debug struct {
	// Listen is the host:port for pprof. Default "" (off). It is kept apart
	// from Listen so profiles are never exposed to registry clients; bind it
	// to loopback.
	Listen string `yaml:"listen"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen: ":5000",
		Upstream: Upstream{
			Registry:          Registry{URL: "https://registry-1.docker.io"},
			TagTTL:            Duration(5 * time.Minute),
			RevalidateTimeout: Duration(3 * time.Second),
			Timeout:           Duration(30 * time.Second),
			Retries:           4,
			DownAfter:         3,
			StallAfter:        Duration(3 * time.Second),

			PrefetchConcurrency: 8,
			SegmentThreshold:    16 << 20,
			Segments:            4,
			FarLatency:          Duration(10 * time.Millisecond),
		},
		Storage: Storage{Dir: "./data", HighWatermark: 95, LowWatermark: 85, S3: defaultS3()},
		Cluster: defaultCluster(),
		Push:    Push{UploadExpiry: Duration(time.Hour), MaxUploads: 1000, MaxUploadsPerClient: 100, ChunkBuffers: 256 << 20, BodyIdleTimeout: Duration(30 * time.Second)},
		Auth:    Auth{FailedLogins: 10},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// Pins splits Pin into its entries, trimmed, without empty ones.
func (s Storage) Pins() []string {
	var out []string
	for _, p := range strings.Split(s.Pin, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
