package metrics

// Helpers for the write path's collectors; like the others they accept a
// nil *Metrics, so tests and tools may run without metrics.

// UploadStarted counts an upload session opened.
func (m *Metrics) UploadStarted() {
	if m != nil {
		m.UploadsActive.Inc()
	}
}

// UploadEnded counts an upload session finished, cancelled or expired.
func (m *Metrics) UploadEnded() {
	if m != nil {
		m.UploadsActive.Dec()
	}
}

// SetUploads publishes the number of sessions open (after a restart).
func (m *Metrics) SetUploads(n int) {
	if m != nil {
		m.UploadsActive.Set(float64(n))
	}
}

// SetWriteThroughPending publishes the length of the write-through queue.
func (m *Metrics) SetWriteThroughPending(n int) {
	if m != nil {
		m.WriteThroughPending.Set(float64(n))
	}
}

// WriteThroughDone counts a manifest written through to the upstream.
func (m *Metrics) WriteThroughDone() {
	if m != nil {
		m.WriteThroughPushed.Inc()
	}
}

// WriteThroughDeleteDone counts a delete passed on to the upstream.
func (m *Metrics) WriteThroughDeleteDone() {
	if m != nil {
		m.WriteThroughDeleted.Inc()
	}
}

// WriteThroughFailed counts a failed write-through attempt by reason
// (a fixed set: unavailable, timeout, unauthorized, denied, rejected,
// missing, error).
func (m *Metrics) WriteThroughFailed(reason string) {
	if m != nil {
		m.WriteThroughFailures.WithLabelValues(reason).Inc()
	}
}
