package transport

import (
	"net/http"
	"net/url"
	"testing"
)

// blockingProbe holds every probe until the test ends.
type blockingProbe struct{ release chan struct{} }

func (b blockingProbe) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
	return nil, r.Context().Err()
}

// TestOneProbeWhileFlapping: an upstream marked down, up again by a
// request while its probe is out, and down again, still has one probe
// goroutine, not two.
func TestOneProbeWhileFlapping(t *testing.T) {
	probe := blockingProbe{release: make(chan struct{})}
	u, _ := url.Parse("http://upstream.invalid/v2/")
	h, err := NewHealth(http.DefaultTransport, HealthOptions{Name: "flap", DownAfter: 1, Probe: probe, ProbeURL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	defer close(probe.release)

	h.fail("503", "503")
	if h.Down() == nil {
		t.Fatal("not down after DownAfter failures")
	}
	h.succeed() // a request in flight answered
	h.fail("503", "503")
	if h.Down() == nil {
		t.Fatal("not down again")
	}
	h.mu.Lock()
	probes := h.probes
	h.mu.Unlock()
	if probes != 1 {
		t.Errorf("%d probe goroutines started over two down periods while the first was still out, want 1", probes)
	}
}
