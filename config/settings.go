package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Setting describes one configurable value: where it lives in the YAML file,
// and which flag and environment variable override it. Settings returns the
// full table for --help and the README.
type Setting struct {
	Path    string // YAML field path, e.g. "storage.maxSize"; "" for --config, which is not a field
	Flag    string // flag name without dashes, e.g. "max-size"; given as -max-size or --max-size
	Env     string // environment variable, e.g. "WHARF_MAX_SIZE"
	Arg     string // placeholder for the value in help text, e.g. "SIZE"
	Help    string // one line, lower case, no trailing period
	Default string // the default as it would be written, "" when empty or computed
}

// binding is a Setting plus the field it sets. field is nil for --config.
type binding struct {
	Setting
	field func(*Config) any
}

// bindings is the one table of settings. Flags, environment variables, the
// YAML decoder and --help are all built from it; add a setting here and
// everything else follows.
func bindings() []binding {
	return []binding{
		{Setting{Flag: "config", Env: "WHARF_CONFIG", Arg: "FILE",
			Help: "YAML config file; its settings are overridden by WHARF_* variables and flags"},
			nil},
		{Setting{Path: "listen", Flag: "listen", Env: "WHARF_LISTEN", Arg: "ADDR",
			Help: "address to serve the registry API on"},
			func(c *Config) any { return &c.Listen }},
		{Setting{Path: "offline", Flag: "offline", Env: "WHARF_OFFLINE", Arg: "BOOL",
			Help: "contact no upstream: serve only what the store holds (air-gapped sites, see wharf import)"},
			func(c *Config) any { return &c.Offline }},
		{Setting{Path: "upstream.url", Flag: "upstream", Env: "WHARF_UPSTREAM", Arg: "URL",
			Help: "upstream registry to mirror (http or https)"},
			func(c *Config) any { return &c.Upstream.URL }},
		{Setting{Path: "upstream.name", Flag: "upstream-name", Env: "WHARF_UPSTREAM_NAME", Arg: "HOST",
			Help: `registry host clients name the default upstream by (?ns=, path prefix); default: the URL's host, "docker.io" for Docker Hub`},
			func(c *Config) any { return &c.Upstream.Name }},
		{Setting{Path: "upstream.username", Flag: "upstream-username", Env: "WHARF_UPSTREAM_USERNAME", Arg: "NAME",
			Help: "user name for the upstream; empty is anonymous"},
			func(c *Config) any { return &c.Upstream.Username }},
		{Setting{Path: "upstream.password", Flag: "upstream-password", Env: "WHARF_UPSTREAM_PASSWORD", Arg: "PASSWORD",
			Help: "password or token for the upstream (a flag shows in ps; prefer the password file)"},
			func(c *Config) any { return &c.Upstream.Password }},
		{Setting{Path: "upstream.passwordFile", Flag: "upstream-password-file", Env: "WHARF_UPSTREAM_PASSWORD_FILE", Arg: "FILE",
			Help: "file holding the upstream password; trailing newlines are trimmed"},
			func(c *Config) any { return &c.Upstream.PasswordFile }},
		{Setting{Path: "upstream.dockerConfig", Flag: "upstream-docker-config", Env: "WHARF_UPSTREAM_DOCKER_CONFIG", Arg: "FILE",
			Help: "Docker config.json to take the upstream's credentials from"},
			func(c *Config) any { return &c.Upstream.DockerConfig }},
		{Setting{Path: "upstream.caFile", Flag: "upstream-ca-file", Env: "WHARF_UPSTREAM_CA_FILE", Arg: "FILE",
			Help: "PEM CA certificates trusted for the upstream besides the system's"},
			func(c *Config) any { return &c.Upstream.CAFile }},
		{Setting{Path: "upstream.insecureSkipVerify", Flag: "upstream-insecure-skip-verify", Env: "WHARF_UPSTREAM_INSECURE_SKIP_VERIFY", Arg: "BOOL",
			Help: "accept any upstream TLS certificate (lab use only)"},
			func(c *Config) any { return &c.Upstream.InsecureSkipVerify }},
		{Setting{Path: "upstream.tagTTL", Flag: "tag-ttl", Env: "WHARF_TAG_TTL", Arg: "DURATION",
			Help: "how long a cached tag is trusted before a HEAD revalidates it; 0 always revalidates"},
			func(c *Config) any { return &c.Upstream.TagTTL }},
		{Setting{Path: "upstream.revalidateTimeout", Flag: "revalidate-timeout", Env: "WHARF_REVALIDATE_TIMEOUT", Arg: "DURATION",
			Help: "how long a pull of a cached tag waits for its revalidation before the cached copy is served (revalidation goes on in the background)"},
			func(c *Config) any { return &c.Upstream.RevalidateTimeout }},
		{Setting{Path: "upstream.timeout", Flag: "upstream-timeout", Env: "WHARF_UPSTREAM_TIMEOUT", Arg: "DURATION",
			Help: "time allowed for an upstream response's headers"},
			func(c *Config) any { return &c.Upstream.Timeout }},
		{Setting{Path: "upstream.retries", Flag: "upstream-retries", Env: "WHARF_UPSTREAM_RETRIES", Arg: "N",
			Help: "retries of a failed upstream request, 0..20"},
			func(c *Config) any { return &c.Upstream.Retries }},
		{Setting{Path: "upstream.downAfter", Flag: "upstream-down-after", Env: "WHARF_UPSTREAM_DOWN_AFTER", Arg: "N",
			Help: "consecutive failed upstream requests that mark an upstream down (misses then 503 at once, cached tags served without asking) until a probe succeeds, 1..100"},
			func(c *Config) any { return &c.Upstream.DownAfter }},
		{Setting{Path: "upstream.stallAfter", Flag: "upstream-stall-after", Env: "WHARF_UPSTREAM_STALL_AFTER", Arg: "DURATION",
			Help: "wait for an upstream's response headers after which a request counts as failed toward downAfter (it still waits up to the upstream timeout); also the probe's timeout"},
			func(c *Config) any { return &c.Upstream.StallAfter }},
		{Setting{Path: "upstream.officialLibrary", Flag: "upstream-official-library", Env: "WHARF_UPSTREAM_OFFICIAL_LIBRARY", Arg: "BOOL",
			Help: `map one-component names to "library/…"; default: true for Docker Hub, else false`},
			func(c *Config) any { return &c.Upstream.OfficialLibrary }},
		{Setting{Path: "upstream.writeThrough", Flag: "write-through", Env: "WHARF_WRITE_THROUGH", Arg: "BOOL",
			Help: "push manifests pushed here (and their blobs) on to the upstream, queued across restarts"},
			func(c *Config) any { return &c.Upstream.WriteThrough }},
		{Setting{Path: "upstream.writeThroughSync", Flag: "write-through-sync", Env: "WHARF_WRITE_THROUGH_SYNC", Arg: "BOOL",
			Help: "make a manifest push wait until the upstream has it (with --write-through)"},
			func(c *Config) any { return &c.Upstream.WriteThroughSync }},
		{Setting{Path: "upstream.shadowTags", Flag: "upstream-shadow-tags", Env: "WHARF_UPSTREAM_SHADOW_TAGS", Arg: "BOOL",
			Help: "let pushes replace tags the upstream serves (every client then pulls the pushed image); write-through implies it"},
			func(c *Config) any { return &c.Upstream.ShadowTags }},
		{Setting{Path: "upstream.prefetch", Flag: "prefetch", Env: "WHARF_PREFETCH", Arg: "BOOL",
			Help: "fetch an image's config and layers as soon as its manifest is fetched for a client, before the client asks; not while the upstream is down or rate-limiting (default true)"},
			func(c *Config) any { return &c.Upstream.Prefetch }},
		{Setting{Path: "upstream.prefetchConcurrency", Flag: "prefetch-concurrency", Env: "WHARF_PREFETCH_CONCURRENCY", Arg: "N",
			Help: "blobs prefetched at once per upstream, 1..64"},
			func(c *Config) any { return &c.Upstream.PrefetchConcurrency }},
		{Setting{Path: "upstream.segmentThreshold", Flag: "upstream-segment-threshold", Env: "WHARF_UPSTREAM_SEGMENT_THRESHOLD", Arg: "SIZE",
			Help: "fetch a blob larger than this as concurrent Range requests (upstream.segments at once) where the upstream honours Range; 0 is one stream per blob"},
			func(c *Config) any { return &c.Upstream.SegmentThreshold }},
		{Setting{Path: "upstream.segments", Flag: "upstream-segments", Env: "WHARF_UPSTREAM_SEGMENTS", Arg: "N",
			Help: "ranges of one blob fetched at once, 1..16"},
			func(c *Config) any { return &c.Upstream.Segments }},
		{Setting{Path: "upstream.farLatency", Flag: "upstream-far-latency", Env: "WHARF_UPSTREAM_FAR_LATENCY", Arg: "DURATION",
			Help: "an upstream answering faster than this is near: no prefetch and no segmented fetch from it (one connection per blob fills a near link); 0 treats every upstream as far"},
			func(c *Config) any { return &c.Upstream.FarLatency }},
		{Setting{Path: "upstreams", Flag: "upstreams", Env: "WHARF_UPSTREAMS", Arg: "NAME=URL,...",
			Help: "more registries to mirror, by name (?ns=, path prefix); repeatable; merged by name into the file's upstreams list"},
			func(c *Config) any { return &c.Upstreams }},
		{Setting{Path: "storage.dir", Flag: "data", Env: "WHARF_DATA", Arg: "DIR",
			Help: "data directory for cached content and the index"},
			func(c *Config) any { return &c.Storage.Dir }},
		{Setting{Path: "storage.maxSize", Flag: "max-size", Env: "WHARF_MAX_SIZE", Arg: "SIZE",
			Help: "cap on cached bytes (e.g. 512MiB, 20GiB); 0 is unlimited; with storage.s3, cap on the copies kept in the data directory (the bucket's cap is storage-s3-max-size)"},
			func(c *Config) any { return &c.Storage.MaxSize }},
		{Setting{Path: "storage.highWatermark", Flag: "high-watermark", Env: "WHARF_HIGH_WATERMARK", Arg: "PERCENT",
			Help: "eviction starts when the cache passes this percentage of max-size (of storage-s3-max-size with storage.s3)"},
			func(c *Config) any { return &c.Storage.HighWatermark }},
		{Setting{Path: "storage.lowWatermark", Flag: "low-watermark", Env: "WHARF_LOW_WATERMARK", Arg: "PERCENT",
			Help: "eviction stops when the cache is under this percentage of max-size (of storage-s3-max-size with storage.s3)"},
			func(c *Config) any { return &c.Storage.LowWatermark }},
		{Setting{Path: "storage.pin", Flag: "pin", Env: "WHARF_PIN", Arg: "REFS",
			Help: `comma-separated repositories or repo:tag that eviction never removes, e.g. "library/alpine,library/nginx:1.27"`},
			func(c *Config) any { return &c.Storage.Pin }},
		{Setting{Path: "storage.s3.endpoint", Flag: "storage-s3-endpoint", Env: "WHARF_STORAGE_S3_ENDPOINT", Arg: "URL",
			Help: "keep content in this S3-compatible store (https://host[:port], no path) instead of the data directory; the index stays there"},
			func(c *Config) any { return &c.Storage.S3.Endpoint }},
		{Setting{Path: "storage.s3.bucket", Flag: "storage-s3-bucket", Env: "WHARF_STORAGE_S3_BUCKET", Arg: "NAME",
			Help: "bucket that holds the content; it must exist"},
			func(c *Config) any { return &c.Storage.S3.Bucket }},
		{Setting{Path: "storage.s3.region", Flag: "storage-s3-region", Env: "WHARF_STORAGE_S3_REGION", Arg: "REGION",
			Help: "the bucket's region; empty asks the store"},
			func(c *Config) any { return &c.Storage.S3.Region }},
		{Setting{Path: "storage.s3.prefix", Flag: "storage-s3-prefix", Env: "WHARF_STORAGE_S3_PREFIX", Arg: "PREFIX",
			Help: "key prefix of everything wharf writes in the bucket"},
			func(c *Config) any { return &c.Storage.S3.Prefix }},
		{Setting{Path: "storage.s3.pathStyle", Flag: "storage-s3-path-style", Env: "WHARF_STORAGE_S3_PATH_STYLE", Arg: "BOOL",
			Help: "put the bucket in the URL path (MinIO, Ceph RGW, SeaweedFS); default: chosen by the client, virtual-hosted for AWS"},
			func(c *Config) any { return &c.Storage.S3.PathStyle }},
		{Setting{Path: "storage.s3.caFile", Flag: "storage-s3-ca-file", Env: "WHARF_STORAGE_S3_CA_FILE", Arg: "FILE",
			Help: "PEM CA certificates trusted for the S3 store besides the system's"},
			func(c *Config) any { return &c.Storage.S3.CAFile }},
		{Setting{Path: "storage.s3.accessKey", Flag: "storage-s3-access-key", Env: "WHARF_STORAGE_S3_ACCESS_KEY", Arg: "KEY",
			Help: "access key id for the S3 store; with no access key, secret key or secret key file set and no iamRole, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) are used, and without those requests are anonymous"},
			func(c *Config) any { return &c.Storage.S3.AccessKey }},
		{Setting{Path: "storage.s3.secretKey", Flag: "storage-s3-secret-key", Env: "WHARF_STORAGE_S3_SECRET_KEY", Arg: "SECRET",
			Help: "secret key for the S3 store (a flag shows in ps; prefer the secret key file)"},
			func(c *Config) any { return &c.Storage.S3.SecretKey }},
		{Setting{Path: "storage.s3.sessionToken", Flag: "storage-s3-session-token", Env: "WHARF_STORAGE_S3_SESSION_TOKEN", Arg: "SECRET",
			Help: "session token of temporary S3 keys (from AWS STS; they expire unrenewed: prefer iamRole; a flag shows in ps); taken from AWS_SESSION_TOKEN with keys from the environment"},
			func(c *Config) any { return &c.Storage.S3.SessionToken }},
		{Setting{Path: "storage.s3.iamRole", Flag: "storage-s3-iam-role", Env: "WHARF_STORAGE_S3_IAM_ROLE", Arg: "BOOL",
			Help: "take S3 credentials from the IAM role wharf runs as, renewed before they expire: a Kubernetes service account's (IRSA), the container's (ECS, EKS Pod Identity), or the EC2 instance profile; not with keys"},
			func(c *Config) any { return &c.Storage.S3.IAMRole }},
		{Setting{Path: "storage.s3.secretKeyFile", Flag: "storage-s3-secret-key-file", Env: "WHARF_STORAGE_S3_SECRET_KEY_FILE", Arg: "FILE",
			Help: "file holding the S3 secret key; trailing newlines are trimmed"},
			func(c *Config) any { return &c.Storage.S3.SecretKeyFile }},
		{Setting{Path: "storage.s3.partSize", Flag: "storage-s3-part-size", Env: "WHARF_STORAGE_S3_PART_SIZE", Arg: "SIZE",
			Help: "part size of multipart uploads to the S3 store, 5MiB..5GiB"},
			func(c *Config) any { return &c.Storage.S3.PartSize }},
		{Setting{Path: "storage.s3.timeout", Flag: "storage-s3-timeout", Env: "WHARF_STORAGE_S3_TIMEOUT", Arg: "DURATION",
			Help: "bound on each wait on the S3 store: connecting, a response's headers, a body that stops moving"},
			func(c *Config) any { return &c.Storage.S3.Timeout }},
		{Setting{Path: "storage.s3.maxSize", Flag: "storage-s3-max-size", Env: "WHARF_STORAGE_S3_MAX_SIZE", Arg: "SIZE",
			Help: "cap on content bytes in the bucket, evicted between the watermarks (max-size then caps the data directory's copies); 0 is unlimited; in a cluster one replica at a time evicts (a lease), otherwise one wharf per bucket and prefix"},
			func(c *Config) any { return &c.Storage.S3.MaxSize }},
		{Setting{Path: "storage.s3.abandonedUploadAge", Flag: "storage-s3-abandoned-upload-age", Env: "WHARF_STORAGE_S3_ABANDONED_UPLOAD_AGE", Arg: "DURATION",
			Help: "age past which an unfinished multipart upload under the prefix is aborted at start, as a crash's leftover"},
			func(c *Config) any { return &c.Storage.S3.AbandonedUploadAge }},
		{Setting{Path: "cluster.listen", Flag: "cluster-listen", Env: "WHARF_CLUSTER_LISTEN", Arg: "ADDR",
			Help: "the peer listener (health checks and replicas' requests, never clients), host:port; must differ from listen"},
			func(c *Config) any { return &c.Cluster.Listen }},
		{Setting{Path: "cluster.self", Flag: "cluster-self", Env: "WHARF_CLUSTER_SELF", Arg: "HOST:PORT",
			Help: "this replica's peer address as the others reach it (default: the host name and cluster-listen's port)"},
			func(c *Config) any { return &c.Cluster.Self }},
		{Setting{Path: "cluster.peers", Flag: "cluster-peers", Env: "WHARF_CLUSTER_PEERS", Arg: "ADDRS",
			Help: "comma-separated peer addresses host:port (self may be listed); turns the cluster on; needs storage.s3"},
			func(c *Config) any { return &c.Cluster.Peers }},
		{Setting{Path: "cluster.dns", Flag: "cluster-dns", Env: "WHARF_CLUSTER_DNS", Arg: "NAME:PORT",
			Help: "name whose addresses are the replicas (a Kubernetes headless Service), resolved every 5s; turns the cluster on"},
			func(c *Config) any { return &c.Cluster.DNS }},
		{Setting{Path: "cluster.secret", Flag: "cluster-secret", Env: "WHARF_CLUSTER_SECRET", Arg: "SECRET",
			Help: "the cluster secret, at least 16 bytes, the same on every replica (a flag shows in ps; prefer the secret file); several, one per line, for a rotation: the first is sent, any is accepted"},
			func(c *Config) any { return &c.Cluster.Secret }},
		{Setting{Path: "cluster.secretFile", Flag: "cluster-secret-file", Env: "WHARF_CLUSTER_SECRET_FILE", Arg: "FILE",
			Help: "file holding the cluster secret, or several one per line (rotation: the first is sent, any is accepted); trailing newlines are trimmed"},
			func(c *Config) any { return &c.Cluster.SecretFile }},
		{Setting{Path: "push.deletes", Flag: "deletes", Env: "WHARF_DELETES", Arg: "BOOL",
			Help: "allow DELETE of manifests, pushed tags and blobs; false answers 405 UNSUPPORTED (default true)"},
			func(c *Config) any { return &c.Push.Deletes }},
		{Setting{Path: "push.uploadExpiry", Flag: "upload-expiry", Env: "WHARF_UPLOAD_EXPIRY", Arg: "DURATION",
			Help: "remove a blob upload after this long without a chunk"},
			func(c *Config) any { return &c.Push.UploadExpiry }},
		{Setting{Path: "push.maxUploads", Flag: "max-uploads", Env: "WHARF_MAX_UPLOADS", Arg: "N",
			Help: "blob upload sessions open at once, all clients together; past it 429 TOOMANYREQUESTS"},
			func(c *Config) any { return &c.Push.MaxUploads }},
		{Setting{Path: "push.maxUploadsPerClient", Flag: "max-uploads-per-client", Env: "WHARF_MAX_UPLOADS_PER_CLIENT", Arg: "N",
			Help: "blob upload sessions one user (or anonymous client address) holds at once"},
			func(c *Config) any { return &c.Push.MaxUploadsPerClient }},
		{Setting{Path: "push.chunkBuffers", Flag: "chunk-buffers", Env: "WHARF_CHUNK_BUFFERS", Arg: "SIZE",
			Help: "with storage.s3, memory for upload chunks of unknown length, one part each while it streams; past it a request waits up to 30s, then 503 (per replica; half per client)"},
			func(c *Config) any { return &c.Push.ChunkBuffers }},
		{Setting{Path: "push.bodyIdleTimeout", Flag: "body-idle-timeout", Env: "WHARF_BODY_IDLE_TIMEOUT", Arg: "DURATION",
			Help: "close a request whose body sends no byte for this long; an upload keeps what was acknowledged"},
			func(c *Config) any { return &c.Push.BodyIdleTimeout }},
		{Setting{Path: "log.level", Flag: "log-level", Env: "WHARF_LOG_LEVEL", Arg: "LEVEL",
			Help: "trace, debug, info, warn, error, fatal or panic"},
			func(c *Config) any { return &c.Log.Level }},
		{Setting{Path: "log.format", Flag: "log-format", Env: "WHARF_LOG_FORMAT", Arg: "FORMAT",
			Help: "text or json"},
			func(c *Config) any { return &c.Log.Format }},
		{Setting{Path: "debug.listen", Flag: "debug-listen", Env: "WHARF_DEBUG_LISTEN", Arg: "ADDR",
			Help: "address for pprof (e.g. 127.0.0.1:6060); empty is off"},
			func(c *Config) any { return &c.Debug.Listen }},
		{Setting{Path: "auth.htpasswd", Flag: "htpasswd", Env: "WHARF_HTPASSWD", Arg: "FILE",
			Help: "htpasswd file (bcrypt) of users allowed to pull and push; empty: no users, anyone may pull and nobody push"},
			func(c *Config) any { return &c.Auth.Htpasswd }},
		{Setting{Path: "auth.anonymousPull", Flag: "anonymous-pull", Env: "WHARF_ANONYMOUS_PULL", Arg: "BOOL",
			Help: "with --htpasswd, let clients without credentials pull (rules, if any, say what)"},
			func(c *Config) any { return &c.Auth.AnonymousPull }},
		{Setting{Path: "auth.anonymousPush", Flag: "anonymous-push", Env: "WHARF_ANONYMOUS_PUSH", Arg: "BOOL",
			Help: "let clients without credentials push and delete (a lab or CI network only; rules, if any, say where)"},
			func(c *Config) any { return &c.Auth.AnonymousPush }},
		{Setting{Path: "auth.failedLogins", Flag: "failed-logins", Env: "WHARF_FAILED_LOGINS", Arg: "N",
			Help: "wrong passwords one client address may send per minute before its logins get 429; 0 is no limit"},
			func(c *Config) any { return &c.Auth.FailedLogins }},
		{Setting{Path: "auth.rules", Flag: "auth-rules", Env: "WHARF_AUTH_RULES", Arg: "RULES",
			Help: `comma-separated user:read|write:prefix rules, e.g. "ci:write:docker.io/team,*:read:*,anonymous:read:docker.io/library"; empty lets every user read and write`},
			func(c *Config) any { return &c.Auth.Rules }},
		{Setting{Path: "tls.certFile", Flag: "tls-cert", Env: "WHARF_TLS_CERT", Arg: "FILE",
			Help: "PEM certificate to serve HTTPS with (with --tls-key); reloaded when it changes"},
			func(c *Config) any { return &c.TLS.CertFile }},
		{Setting{Path: "tls.keyFile", Flag: "tls-key", Env: "WHARF_TLS_KEY", Arg: "FILE",
			Help: "PEM private key of --tls-cert"},
			func(c *Config) any { return &c.TLS.KeyFile }},
	}
}

// Settings returns the table of settings with each default filled in from
// Default.
func Settings() []Setting {
	def := Default()
	bs := bindings()
	out := make([]Setting, len(bs))
	for i, b := range bs {
		out[i] = b.Setting
		if b.field != nil {
			out[i].Default = formatValue(b.field(&def))
		}
	}
	return out
}

// setValue parses s into the field p points to. It is the one parser for
// every layer, so a value means the same in the file, the environment and
// on the command line.
func setValue(p any, s string) error {
	switch p := p.(type) {
	case *string:
		*p = s
	case *Secret:
		*p = Secret(s)
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*p = n
	case **bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*p = &v
	case *ByteSize:
		return p.Set(s)
	case *Duration:
		return p.Set(s)
	case *[]NamedUpstream:
		return parseUpstreamList(p, s)
	case *[]string:
		parseList(p, s)
	default:
		// Only reachable by adding a field type to bindings and not here;
		// the settings tests exercise every row.
		return fmt.Errorf("config: no parser for %T", p)
	}
	return nil
}

// formatValue writes the field p points to as setValue would read it;
// "" for an empty or unset value.
func formatValue(p any) string {
	switch p := p.(type) {
	case *string:
		return *p
	case *Secret:
		return p.String()
	case *int:
		return strconv.Itoa(*p)
	case **bool:
		if *p == nil {
			return ""
		}
		return strconv.FormatBool(**p)
	case *[]NamedUpstream:
		return formatUpstreamList(*p)
	case *[]string:
		return strings.Join(*p, ",")
	case fmt.Stringer:
		return p.String()
	}
	return fmt.Sprint(p)
}
