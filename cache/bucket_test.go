package cache

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
)

// Replicas on one MinIO bucket, as a cluster runs them: each a Cache over
// a tier (its own local disk in front of the bucket) with the bucket's
// records, evicting from the bucket only when told to.

type evictBucket struct {
	t       *testing.T
	srv     *s3test.Server
	name    string
	shared  *s3.Store             // the test's own view of the bucket
	records func(Records) Records // wraps the replicas' records (faults), when set
}

func newBucket(t *testing.T) *evictBucket {
	srv := minio.Get(t)
	b := &evictBucket{t: t, srv: srv, name: srv.Bucket(t)}
	b.shared = b.openS3()
	return b
}

func (b *evictBucket) openS3() *s3.Store {
	t := b.t
	t.Helper()
	st, _, err := s3.Open(context.Background(), s3.Options{
		Endpoint: b.srv.Endpoint, Bucket: b.name, Region: "us-east-1",
		AccessKey: b.srv.User, SecretKey: b.srv.Key, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// evictReplica is one replica on the bucket.
type evictReplica struct {
	*Cache
	m     *metrics.Metrics
	close func() // closes the Cache once (the test's end does too)
}

// replica opens a replica named name; opts adds to what every replica
// has (the tier, the records, a cap of 1 byte: everything is past it).
func (b *evictBucket) replica(name string, opts Options) *evictReplica {
	t := b.t
	t.Helper()
	st := b.openS3()
	dir := t.TempDir()
	local, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tier.New(context.Background(), local, st, tier.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() }) // after the cache: cleanups run last first
	m := metrics.New(prometheus.NewRegistry())
	opts.Dir, opts.Store, opts.Records, opts.Metrics, opts.Replica = dir, tr, st.Records(), m, name
	if b.records != nil {
		opts.Records = b.records(opts.Records)
	}
	opts.SharedEviction = true
	if opts.MaxSize == 0 {
		opts.MaxSize = 1
	}
	if opts.AccessReport == 0 {
		opts.AccessReport = 50 * time.Millisecond // the leader's batches wait for the next
	}
	c, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	closeOnce := sync.OnceFunc(func() { c.Close() })
	t.Cleanup(closeOnce)
	return &evictReplica{Cache: c, m: m, close: closeOnce}
}

// store puts body in the bucket through r and indexes it (pinned as a
// push's, or not as a fill's).
func (r *evictReplica) storeBytes(t *testing.T, body []byte, pinned bool) digest.Digest {
	t.Helper()
	d := digest.FromBytes(body)
	if err := r.putBytes(context.Background(), d, body); err != nil {
		t.Fatal(err)
	}
	if err := r.recordContent(d, int64(len(body)), "", nil, pinned); err != nil {
		t.Fatal(err)
	}
	return d
}

// inBucket reports whether the bucket holds d's object.
func (b *evictBucket) inBucket(d digest.Digest) bool {
	_, err := b.shared.Stat(context.Background(), d)
	return err == nil
}

// keys lists the bucket's records under prefix.
func (b *evictBucket) keys(prefix string) []string {
	var out []string
	if err := b.shared.Records().List(context.Background(), prefix, func(k string) error { out = append(out, k); return nil }); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// pinnedLinksHaveObjects fails t for any pinned link record in the bucket
// whose content the bucket lacks: an acknowledged push lost.
func (b *evictBucket) pinnedLinksHaveObjects() {
	t := b.t
	t.Helper()
	for _, k := range b.keys(sharedLinksDir) {
		r, err := b.shared.Records().Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		var l sharedLink
		if err := json.Unmarshal(r.Data, &l); err != nil {
			t.Fatal(err)
		}
		sk, ok := parseSharedKey(k)
		if !ok {
			t.Fatalf("unparsable link key %q", k)
		}
		if l.Pinned && !b.inBucket(sk.digest) {
			t.Errorf("pinned link %s names content the bucket lacks", k)
		}
	}
}

// noEvictingLeft fails t if an evicting record outlived its eviction.
func (b *evictBucket) noEvictingLeft() {
	b.t.Helper()
	if ks := b.keys(sharedEvictingDir); len(ks) > 0 {
		b.t.Errorf("evicting records left: %s", strings.Join(ks, ", "))
	}
}

// within fails t unless ch delivers within 10 s.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
