package proxy

import (
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/statuspage/statuspagetest"
)

// TestStatusPageListsEveryUpstreamFromTheStart: before any request, every
// configured upstream has its row (idle), not only the default one, so an
// operator sees at once what wharf mirrors; the docker.io alias of a
// default that is not Docker Hub is no upstream of its own.
func TestStatusPageListsEveryUpstreamFromTheStart(t *testing.T) {
	ups, err := NewUpstreamSet(plain("registry.site:5000"), plain("ghcr.io"), plain("quay.io"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := logrus.New()
	log.SetOutput(io.Discard)
	h, err := New(withStatusPage(t, Options{Store: &recorder{}, Upstreams: ups, Metrics: metrics.New(reg), Logger: log}, reg, nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, doc := statuspagetest.Get(t, h, nil)
	text := textByID(doc, "upstreams")
	for _, name := range []string{"registry.site:5000", "ghcr.io", "quay.io"} {
		if !strings.Contains(text, name) {
			t.Errorf("#upstreams does not list %s before its first request:\n%s", name, text)
		}
	}
	if strings.Contains(text, "docker.io") {
		t.Errorf("#upstreams lists the docker.io alias as an upstream:\n%s", text)
	}
	if n := strings.Count(text, "idle"); n != 3 {
		t.Errorf("#upstreams shows %d idle rows, want 3:\n%s", n, text)
	}
}
