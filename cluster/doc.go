// Package cluster knows who the replicas of a wharf cluster are, which of
// them are alive, and which one owns a key (a digest, a tag): the
// membership and ownership of docs/cluster.md's step 5. It knows nothing
// of the cache, of HTTP routes beyond its own health endpoint, or of
// configuration files; the caller passes Options and mounts HealthHandler.
//
//	Options.Peers (static) ──┐
//	Options.DNS (name:port) ─┼─▶ members ─── one goroutine: resolve DNS every
//	  A/AAAA, every 5s       │   (self +      ResolveEvery, GET every peer's
//	Options.Self ────────────┘    peers)      /cluster/health every CheckEvery
//	                                │                 │  Bearer <secret>
//	                                │                 ▼
//	         MarkFailed(peer) ────▶ up / down ◀── DownAfter failures: down;
//	         (a caller's request       │          one success: up
//	          to the peer failed)      ▼
//	                     Rank(key): the live members by rendezvous weight
//	                     sha256(member NUL key)[:8], highest first;
//	                     Owner(key) = Rank(key)[0]
//
//	replica A ── GET /cluster/health, Authorization: Bearer <secret> ──▶ replica B
//	          ◀── 200 (HealthHandler: the secret, compared in constant time)
//	              401 (any other credential or none: a failed check for A)
//
// A member's name is its address, host:port, spelled in one canonical way
// (see Options.Self), because the ranking hashes the name: replicas that
// see the same live members rank every key the same way, with no
// coordination. Self is always a member and always up, so Rank is never
// empty; when every peer is down, this replica owns everything, and the
// caller's last resort (the upstream) is its own.
//
// Peers start up (a replica joining ranks as the others do) and are
// checked at once. A check is a failure when it does not answer 200 within
// CheckTimeout: no connection, a timeout, a 5xx, a 401 (the wrong secret:
// a replica of another cluster is no member of this one). DownAfter
// failures in a row mark a peer down; MarkFailed marks it down at once;
// one successful check marks it up. A DNS answer replaces the DNS members;
// a failed lookup keeps the last answer, a name with no records leaves
// none.
//
// Authenticate is the gate HealthHandler stands behind, for every route a
// replica serves its peers: the cluster secret as a bearer token, compared
// in constant time, or 401.
//
// Changed returns a channel closed at the next change, for whoever wants
// to follow the membership (tests, a status page, owner-change metrics).
// Close stops the goroutine and waits for it.
package cluster
