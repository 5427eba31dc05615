package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// S3Request counts one request to the S3 store: its method, status (0 when
// no answer came) and the time to the answer's headers.
func (m *Metrics) S3Request(method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if !knownMethod(method) {
		method = "other" // the label set stays fixed
	}
	result := "error"
	if status >= 100 && status < 600 {
		result = strconv.Itoa(status/100) + "xx"
	}
	m.S3Requests.WithLabelValues(method, result).Inc()
	if status != 0 {
		m.S3Latency.WithLabelValues(method).Observe(d.Seconds())
	}
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
		return true
	}
	return false
}

// SetSharedSize publishes the bytes of the shared store, as walked by the
// replica evicting from it.
func (m *Metrics) SetSharedSize(bytes int64) {
	if m != nil {
		m.SharedSize.Set(float64(bytes))
	}
}
