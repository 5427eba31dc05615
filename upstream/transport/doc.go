// Package transport holds the http.RoundTrippers that make up wharf's
// upstream client, one per file, each doing one thing:
//
//	retry.go      retries GET/HEAD on 429, 5xx and connection errors, honouring Retry-After
//	health.go     marks the upstream down after consecutive failures, fails fast, probes it back up
//	auth.go       answers WWW-Authenticate challenges (Bearer via bearer.go, Basic via basic.go)
//	bearer.go     fetches and caches registry tokens per (realm, service, scope)
//	basic.go      Basic credentials
//	ratelimit.go  reads Docker Hub's ratelimit-* headers into gauges, remembers a 429 or an empty budget
//	useragent.go  sets User-Agent
//	observe.go    counts and times every round trip by kind, and the new connections
//	timeout.go    bounds the wait for response headers, not the body
//	guard.go      keeps redirects and token realms of a public upstream off internal addresses
//	addr.go       classifies addresses: loopback, private, link-local, … or public
//	split.go      sends blob GETs and uploads over HTTP/1.1 connections of their own, the rest over HTTP/2 where offered
//	base.go       the default base transport: an idle pool sized for bursts, HTTP/2
//
// The upstream package composes them, outermost first:
//
//	retry → health → auth → ratelimit → useragent → observe → timeout → guard → split → base
//	                                                                                  ↘ base without HTTP/2 (blobs)
//
// so that every attempt (a retried one, a token fetch, a CDN redirect hop)
// is observed and bounded on its own, auth is redone on each retry, and
// no request reaches the network without passing the guard. Token
// requests bypass retry and auth: they go through useragent → observe →
// timeout → guard → split → base, as do health probes. Redirects are
// followed by the http.Client above the stack, under CheckRedirect
// (guard.go).
//
// The guard's clone of the base transport (for a public upstream's CDN and
// token server) keeps the base's pool settings and HTTP/2 but has an idle
// pool of its own: connections to those hosts are reused like the
// registry's own. The guard splits both its base and that clone by kind
// (split.go): a blob download, on every hop of its redirects, gets an
// HTTP/1.1 connection of its own, since one TCP connection's throughput is
// capped on a long link and HTTP/2 would put every blob in flight on one;
// the API's small requests share one HTTP/2 connection per host. That
// makes up to four idle pools per upstream (API and blobs, own host and
// others), each bounded as base.go says.
//
// Nothing here knows about manifests or blobs beyond the request kind,
// which the caller puts in the request's context with WithKind.
package transport
