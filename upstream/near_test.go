package upstream_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestNearIsTheRegistrysLatency: Near is false until an answer was
// timed, true once the registry answered faster than FarLatency, false
// for one that takes longer (a registry far away), and never true with
// FarLatency 0.
func TestNearIsTheRegistrysLatency(t *testing.T) {
	const far = 30 * time.Millisecond
	reg := upstreamtest.NewRegistry(t)
	d, _ := pushLayer(t, reg, "near/app", 4<<10)
	for _, tt := range []struct {
		name       string
		delay      time.Duration // before every answer's headers: the round trip of a registry far away
		farLatency time.Duration
		want       bool
	}{
		{"fast registry", 0, far, true},
		{"slow registry", 2 * far, far, false},
		{"fast registry, farLatency 0", 0, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			faulty.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{Delay: tt.delay} })
			c := newClient(t, faulty.URL, func(o *upstream.Options) { o.FarLatency = tt.farLatency })
			if c.Near() {
				t.Fatal("near before any request")
			}
			for range 3 { // the least of a few: one answer on a busy machine may be late
				body, _, err := c.GetBlob(t.Context(), "near/app", d, 0)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, body)
				body.Close()
			}
			if got := c.Near(); got != tt.want {
				t.Errorf("Near = %v after blob GETs, want %v", got, tt.want)
			}
		})
	}
}
