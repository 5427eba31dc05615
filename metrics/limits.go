package metrics

// LimitHit counts a request refused or cut short by a limit that bounds
// the work one client can cause (a fixed set: uploads_global,
// uploads_client, body_idle, login).
func (m *Metrics) LimitHit(limit string) {
	if m != nil {
		m.LimitHits.WithLabelValues(limit).Inc()
	}
}
