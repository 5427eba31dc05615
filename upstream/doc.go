// Package upstream is wharf's client for upstream registries: it fetches
// manifests, blobs and tag lists over the Docker Registry HTTP API v2 /
// OCI distribution-spec. It knows nothing of the cache or of serving HTTP;
// the cache calls it on a miss.
//
// What it takes care of, so that callers need not:
//
//   - authentication: Bearer token challenges (tokens cached per scope,
//     shared by every request for that scope, one fetch however many want
//     it at once, and attached before being asked: cached, or fetched
//     first once the registry is known to want tokens) and Basic, in
//     transport/;
//   - warm connections: the base transport (transport.NewBase) keeps up to
//     64 idle connections per host for 90s, so a burst of fetches to one
//     upstream, and to the CDN its redirects lead to, reuses a connection
//     per request in flight instead of dialling one per request; make one
//     Client per upstream and share it. The API (manifests, tags, tokens)
//     speaks HTTP/2 over TLS where offered, all on one connection per
//     host; blob GETs and uploads go over HTTP/1.1, a TCP connection
//     each, so that blobs and Range segments fetched at once do not share
//     one connection's throughput (transport/split.go). wharf_upstream_connections_total
//     counts the connections opened;
//   - retries of GET/HEAD on 429, 500/502/503/504 and connection errors,
//     with backoff and Retry-After, bounded by Options and the context;
//   - a per-attempt timeout to response headers that never cuts a body off;
//   - redirects followed (blobs from a CDN) with credentials kept on the
//     registry's own host, and, for an upstream on the internet, no
//     redirect or token realm let onto the site's own network
//     (transport.Guard; Options.Network);
//   - Docker Hub's rules: "alpine" is "library/alpine" (Repository), its
//     API host is shown as "docker.io", its pull budget becomes metrics;
//   - manifest digests, computed from the exact bytes received and checked
//     against the reference and Docker-Content-Digest;
//   - typed errors (errors.go): every failure wraps one sentinel
//     (ErrNotFound, ErrUnavailable, …) in an *Error carrying the status,
//     the v2 error code and Retry-After, for proxy/ to map once.
//
// Blobs are streamed, never buffered, and not verified here: the cache
// hashes them as it writes. Manifests are small (at most oci.MaxManifestSize)
// and read whole, since their digest must be known before they are used.
//
// upstreamtest/ runs the real CNCF distribution registry in-process, with
// Basic or token auth, and a fault-injecting proxy, for this package's tests
// and for those of its callers.
package upstream
