package metrics

// Helpers for the tiered store's collectors (cache/tier); like the others
// they accept a nil *Metrics.

// TierLocalHit counts content opened from the local tier.
func (m *Metrics) TierLocalHit() {
	if m != nil {
		m.TierLocalHits.Inc()
	}
}

// TierSharedRead counts content opened from the shared tier.
func (m *Metrics) TierSharedRead() {
	if m != nil {
		m.TierSharedReads.Inc()
	}
}

// TierPromoted counts a finished promotion by result (a fixed set: ok,
// corrupt, error) and, when it succeeded, the n bytes it copied.
func (m *Metrics) TierPromoted(result string, n int64) {
	if m == nil {
		return
	}
	m.TierPromotions.WithLabelValues(result).Inc()
	if result == "ok" {
		m.TierPromotedBytes.Add(float64(n))
	}
}

// TierLocalEvicted counts local copies removed under the local cap.
func (m *Metrics) TierLocalEvicted(n int) {
	if m != nil {
		m.TierLocalEvictions.Add(float64(n))
	}
}

// SetTierLocalSize publishes the bytes the local tier holds.
func (m *Metrics) SetTierLocalSize(bytes int64) {
	if m != nil {
		m.TierLocalSize.Set(float64(bytes))
	}
}

// RecordsError counts a failed op on the shared records (a fixed set:
// get, put, delete, list, dropped).
func (m *Metrics) RecordsError(op string) {
	if m != nil {
		m.RecordsErrors.WithLabelValues(op).Inc()
	}
}
