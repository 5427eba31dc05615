package s3_test

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/metrics"
)

// Every request to the store is counted by method and result, and timed:
// a HEAD of a missing object is a 4xx, an upload a PUT 2xx, a store that
// stops answering an error.
func TestRequestsCountedAndTimed(t *testing.T) {
	srv := shared.Get(t)
	m := metrics.New(prometheus.NewRegistry())
	o := options(srv, srv.Bucket(t))
	o.Metrics = m
	o.Timeout = 2 * time.Second
	st := open(t, o)
	count := func(op, result string) float64 { return testutil.ToFloat64(m.S3Requests.WithLabelValues(op, result)) }

	f, d := stageRandom(t, 1<<10)
	if err := st.Put(ctx, f, d, 1<<10); err != nil {
		t.Fatal(err)
	}
	if n := count("PUT", "2xx"); n < 1 {
		t.Errorf("PUT 2xx = %v after an upload, want ≥ 1", n)
	}
	heads4xx := count("HEAD", "4xx")
	if _, err := st.Stat(ctx, digest.FromString("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a missing object: %v", err)
	}
	if n := count("HEAD", "4xx"); n != heads4xx+1 {
		t.Errorf("HEAD 4xx = %v after a miss, want %v", n, heads4xx+1)
	}
	if n := testutil.CollectAndCount(m.S3Latency); n < 2 {
		t.Errorf("latency observed for %d methods, want PUT and HEAD at least", n)
	}

	srv.Freeze(t)
	_, err := st.Stat(ctx, d)
	srv.Thaw()
	if err == nil {
		t.Fatal("Stat answered with the store frozen")
	}
	if n := count("HEAD", "error"); n < 1 {
		t.Errorf("HEAD error = %v after a store that did not answer, want ≥ 1", n)
	}
}
