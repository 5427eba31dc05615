package metrics

// Helpers for the cluster's collectors (package peer); like the others
// they accept a nil *Metrics.

// PeerRequest counts one request to a peer by result (a fixed set: ok,
// failed_over, relayed_error, skipped, announce_failed).
func (m *Metrics) PeerRequest(result string) {
	if m != nil {
		m.PeerRequests.WithLabelValues(result).Inc()
	}
}

// PeerReceived counts blob bytes received from a peer.
func (m *Metrics) PeerReceived(n int) {
	if m != nil && n > 0 {
		m.PeerReceivedBytes.Add(float64(n))
	}
}

// PeerServed counts a request served to a peer, by kind (blob, manifest,
// tags).
func (m *Metrics) PeerServed(kind string) {
	if m != nil {
		m.PeerServedTotal.WithLabelValues(kind).Inc()
	}
}

// ClusterChanged counts a change of the live members and publishes how
// many are up.
func (m *Metrics) ClusterChanged(up int) {
	if m != nil {
		m.ClusterChanges.Inc()
		m.ClusterMembersUp.Set(float64(up))
	}
}

// SetClusterMembersUp publishes how many members are up, without
// counting a change (the first view at start).
func (m *Metrics) SetClusterMembersUp(up int) {
	if m != nil {
		m.ClusterMembersUp.Set(float64(up))
	}
}

// EvictHandshake counts a push that found the leader of eviction deleting
// what it linked, by result (a fixed set: kept, refused, stale).
func (m *Metrics) EvictHandshake(result string) {
	if m != nil {
		m.ClusterEvictHandshakes.WithLabelValues(result).Inc()
	}
}

// EvictSpared counts content the leader of eviction (or a delete) chose and kept, by
// reason (a fixed set: pinned, held, linked).
func (m *Metrics) EvictSpared(reason string) {
	if m != nil {
		m.ClusterEvictSpared.WithLabelValues(reason).Inc()
	}
}
