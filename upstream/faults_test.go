package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// faultyRegistry is a registry with one image, behind a Faulty.
type faultyRegistry struct {
	reg    *upstreamtest.Registry
	faulty *upstreamtest.Faulty
}

func newFaultyRegistry(t *testing.T) faultyRegistry {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "faulty/app:v1", upstreamtest.RandomImage(t, 1, 64<<10, upstreamtest.DockerManifest))
	return faultyRegistry{reg: reg, faulty: upstreamtest.NewFaulty(t, reg.URL)}
}

// firstN faults the first n manifest requests and passes the rest.
func firstN(n int32, f upstreamtest.Fault) func(*http.Request) upstreamtest.Fault {
	var seen atomic.Int32
	return func(r *http.Request) upstreamtest.Fault {
		if strings.Contains(r.URL.Path, "/manifests/") && seen.Add(1) <= n {
			return f
		}
		return upstreamtest.Fault{}
	}
}

func always(f upstreamtest.Fault) func(*http.Request) upstreamtest.Fault {
	return func(*http.Request) upstreamtest.Fault { return f }
}

// TestSlowBodyIsNotCutOff: Timeout bounds the wait for headers only; a
// body that takes longer, stalled or slow, still arrives whole.
func TestSlowBodyIsNotCutOff(t *testing.T) {
	fr := newFaultyRegistry(t)
	d, want := pushLayer(t, fr.reg, "faulty/slow", 32<<10)
	tests := []struct {
		name  string
		fault upstreamtest.Fault
	}{
		// Each takes longer than the 1s header timeout below, which a
		// loaded machine still meets for the headers themselves.
		{"stalled after the first bytes", upstreamtest.Fault{StallAfter: 10, Stall: 1500 * time.Millisecond}},
		{"stalled right after the headers", upstreamtest.Fault{Stall: 1500 * time.Millisecond}},
		{"paced", upstreamtest.Fault{BytesPerSec: 20 << 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr.faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
				if strings.Contains(r.URL.Path, "/blobs/") {
					return tt.fault
				}
				return upstreamtest.Fault{}
			})
			c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.Timeout, o.MaxRetries = time.Second, -1 })
			start := time.Now()
			got, _, err := readBlob(t, c, "faulty/slow", d, 0)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want %d", len(got), len(want))
			}
			if time.Since(start) < 1200*time.Millisecond {
				t.Errorf("took %v: the fault did not slow the body", time.Since(start))
			}
		})
	}
}

func TestCorruptManifest(t *testing.T) {
	fr := newFaultyRegistry(t)
	c := newClient(t, fr.reg.URL, nil)
	m, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := always(upstreamtest.Fault{Corrupt: true})
	tests := []struct {
		name  string
		ref   string
		fault func(*http.Request) upstreamtest.Fault
	}{
		{"by tag: disagrees with Docker-Content-Digest", "v1", corrupt},
		{"by digest: disagrees with the reference", m.Descriptor.Digest.String(), corrupt},
		{"by digest, no Docker-Content-Digest", m.Descriptor.Digest.String(),
			always(upstreamtest.Fault{Corrupt: true, DropHeader: []string{"Docker-Content-Digest"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr.faulty.ResetCounts()
			fr.faulty.SetFault(tt.fault)
			c := newClient(t, fr.faulty.URL, nil)
			if _, err := c.GetManifest(t.Context(), "faulty/app", tt.ref, acceptAll); !errors.Is(err, upstream.ErrDigestMismatch) {
				t.Errorf("error = %v, want ErrDigestMismatch", err)
			}
			if n := fr.faulty.Count(http.MethodGet, "/manifests/"); n != 1 {
				t.Errorf("%d attempts; a mismatch is not retried here (the caller decides)", n)
			}
		})
	}
}

func TestManifestFaults(t *testing.T) {
	fr := newFaultyRegistry(t)
	c := newClient(t, fr.faulty.URL, nil)

	fr.faulty.SetFault(always(upstreamtest.Fault{Body: bytes.Repeat([]byte{' '}, oci.MaxManifestSize+1)}))
	if _, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll); !errors.Is(err, upstream.ErrTooLarge) {
		t.Errorf("a 4 MiB+1 manifest: error = %v, want ErrTooLarge", err)
	}

	fr.faulty.SetFault(always(upstreamtest.Fault{DropHeader: []string{"Docker-Content-Digest"}}))
	if _, err := c.HeadManifest(t.Context(), "faulty/app", "v1", acceptAll); !errors.Is(err, upstream.ErrNoDigest) {
		t.Errorf("HEAD without Docker-Content-Digest: error = %v, want ErrNoDigest", err)
	}

	// Without Content-Type, the media type comes from the body.
	fr.faulty.SetFault(always(upstreamtest.Fault{DropHeader: []string{"Content-Type"}}))
	m, err := c.GetManifest(t.Context(), "faulty/app", "v1", acceptAll)
	if err != nil || m.Descriptor.MediaType != mtDocker {
		t.Errorf("GetManifest without Content-Type = %v, %v; want media type %s", m, err, mtDocker)
	}
}

func TestRateLimitGauges(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.faulty.SetFault(always(upstreamtest.Fault{Header: http.Header{
		"Ratelimit-Limit":     {"100;w=21600"},
		"Ratelimit-Remaining": {"76;w=21600"},
	}}))
	m := newMetrics()
	c := newClient(t, fr.faulty.URL, func(o *upstream.Options) { o.Metrics = m })
	if _, err := c.HeadManifest(t.Context(), "faulty/app", "v1", acceptAll); err != nil {
		t.Fatal(err)
	}
	assertGauges(t, m, c.Name(), 100, 76)
	if got := testutil.ToFloat64(m.UpstreamRequests.WithLabelValues(c.Name(), "manifest", "200")); got != 1 {
		t.Errorf("manifest requests = %v, want 1", got)
	}
}

func assertGauges(t *testing.T, m *metrics.Metrics, name string, limit, remaining float64) {
	t.Helper()
	if got := testutil.ToFloat64(m.RateLimitLimit.WithLabelValues(name)); got != limit {
		t.Errorf("ratelimit limit = %v, want %v", got, limit)
	}
	if got := testutil.ToFloat64(m.RateLimitRemain.WithLabelValues(name)); got != remaining {
		t.Errorf("ratelimit remaining = %v, want %v", got, remaining)
	}
}

// TestBlobReadAfterCancel: a caller that cancels mid-body gets its
// context's error, not an upstream failure.
func TestBlobReadAfterCancel(t *testing.T) {
	fr := newFaultyRegistry(t)
	d, _ := pushLayer(t, fr.reg, "faulty/cancel", 64<<10)
	fr.faulty.SetFault(always(upstreamtest.Fault{StallAfter: 100, Stall: 5 * time.Second}))
	c := newClient(t, fr.faulty.URL, nil)
	ctx, cancel := context.WithCancel(t.Context())
	rc, _, err := c.GetBlob(ctx, "faulty/cancel", d, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = io.ReadAll(rc)
	if !errors.Is(err, context.Canceled) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("read error = %v, want context.Canceled", err)
	}
}
