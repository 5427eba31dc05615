package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Segments are the collectors of segmented fetch (cache/fill/segment.go):
// a big blob fetched as several concurrent ranges.
type Segments struct {
	Fills    *prometheus.CounterVec // result: segmented|range_ignored
	Requests *prometheus.CounterVec // kind: first|segment|resume
}

func newSegments(f promauto.Factory) Segments {
	return Segments{
		Fills: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_fill_segmented_total",
			Help: "Fills that asked the upstream for their first range, by how it answered: segmented (a blob bigger than the range, fetched as concurrent ranges), range_ignored (the whole blob instead, read as one stream). A blob that fits in the first range counts in neither.",
		}, []string{"result"}),
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_fill_segment_requests_total",
			Help: "Range requests of fills that may segment, by kind: first (the first range, which tells the size), segment (a later range of a segmented fill), resume (a broken range asked again from its last byte).",
		}, []string{"kind"}),
	}
}

// FillSegmented counts a fill whose first range answered with result (a
// fixed set: segmented, range_ignored).
func (m *Metrics) FillSegmented(result string) {
	if m != nil {
		m.Segments.Fills.WithLabelValues(result).Inc()
	}
}

// SegmentRequest counts a range request of a fill, by kind (a fixed set:
// first, segment, resume).
func (m *Metrics) SegmentRequest(kind string) {
	if m != nil {
		m.Segments.Requests.WithLabelValues(kind).Inc()
	}
}
