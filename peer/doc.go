// Package peer makes the replicas of a wharf cluster each other's
// origins (docs/cluster.md, step 5): a replica that misses a blob, a
// manifest or a tag asks the replica owning it (package cluster's
// rendezvous ranking) before the registry, so the registry is asked once
// for the whole cluster.
//
//	replica A: cache ── miss ──▶ peer.Origin ── Rank(key) ──┐
//	                                  │ self first: the registry (Direct)
//	                                  ▼ a peer first
//	replica B: peer listener ── cluster.Authenticate ── peer.Server
//	           (its own port)        │ ctx marked cache.DirectOrigin
//	                                  ▼
//	           B's cache read path: a hit, or B's one fill/fetch, which
//	           A's request joins; B asks the registry itself, never a peer
//
// Keys: a blob and a manifest by digest rank by the digest, a tag by
// upstream/repo:tag, a tag list by upstream/repo. A peer that fails (no
// connection, a timeout, an error status without RelayedHeader, 401 for a
// wrong secret, a manifest or blob that does not match its digest) is
// marked failed (cluster.MarkFailed) and the next member asked; self ends
// the walk at the registry, so a pull never fails because a peer died. An
// error of the registry's that the owner relays (RelayedHeader: 404,
// 401/403, 429 with Retry-After, 5xx, timeouts) comes back as the
// upstream package's own *upstream.Error and ends the walk, so a down
// registry is not asked once by every replica.
//
// Loops: a request from a peer is served with the registry as the origin,
// whatever the serving replica thinks of the key's owner, so two replicas
// whose views differ for a moment cannot send a request round in circles.
//
// Tags once per TTL for the cluster: the owner answers a tag with Age,
// the seconds since its record was checked against the registry; the
// asker stamps its own record now−Age, so both records expire together
// and the owner revalidates once per TTL for all of them.
//
// Bytes from a peer are not trusted: the asking replica's fill hashes
// them as they land, exactly as it does the registry's.
package peer
