package peer

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// minio is the MinIO server this package's tests share (TestMain stops
// it).
var minio s3test.Shared

// s3Replica is a replica as serve builds one in a cluster: a tiered store
// over its own directory and the cluster's bucket, the bucket's records,
// every upstream behind a peer.Origin, its peer listener, and the peer
// client as the cache's Announcer.
type s3Replica struct {
	*replica
	// refuse makes the peer listener refuse announcements, as a peer the
	// pushing replica cannot reach.
	refuse atomic.Bool
}

// newS3Harness starts n replicas on one new bucket, in front of one
// registry; every is their PushedReposEvery.
func newS3Harness(t testing.TB, n int, every time.Duration) (*harness, []*s3Replica) {
	t.Helper()
	srv := minio.Get(t)
	bucket := srv.Bucket(t)
	h := &harness{reg: upstreamtest.NewRegistry(t)}
	h.up = upstreamtest.NewFaulty(t, h.reg.URL)
	out := make([]*s3Replica, n)
	for i := range out {
		out[i] = &s3Replica{}
	}
	h.start(t, n, nil, func(r *replica, o cache.Origin, pc *Client) cache.Options {
		ctx := context.Background()
		st, _, err := s3.Open(ctx, s3.Options{
			Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
			AccessKey: srv.User, SecretKey: srv.Key, PathStyle: true, Metrics: r.metrics,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		dir := t.TempDir()
		local, _, err := disk.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := tier.New(ctx, local, st, tier.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return cache.Options{Dir: dir, Store: tr, Records: st.Records(), Origins: []cache.Origin{o}, TagTTL: time.Hour,
			Announcer: pc, PushedReposEvery: every, Metrics: r.metrics}
	}, func(i int, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == pushedPath && out[i].refuse.Load() {
				http.Error(w, "unreachable", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	for i, r := range h.replicas {
		out[i].replica = r
	}
	return h, out
}

// s3Reads is how many GETs and HEADs r has sent the bucket: the requests
// a client would wait on (the records and content r writes in the
// background are PUTs).
func (r *s3Replica) s3Reads(t *testing.T) float64 {
	t.Helper()
	fams, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range fams {
		if f.GetName() != metrics.NameS3Requests {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && (l.GetValue() == http.MethodGet || l.GetValue() == http.MethodHead) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

var tagAccept = []string{ocispec.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json"}

// mirrorTag puts an image in the registry as repo:tag and returns its
// manifest's digest.
func mirrorTag(t testing.TB, h *harness, tag string) digest.Digest {
	t.Helper()
	img := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)
	return upstreamtest.Push(t, h.reg, repo.Path+":"+tag, img).Digest
}

// pushTag pushes a new manifest to repo as tag through r, as package
// push does once the client's manifest is validated, and returns its
// digest.
func pushTag(t *testing.T, r *s3Replica, tag string) digest.Digest {
	t.Helper()
	desc := func(mt string) ocispec.Descriptor { // stored, as a push's references are
		b := []byte(t.Name() + mt + time.Now().String())
		d := digest.FromBytes(b)
		f, err := r.cache.TempFile()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := r.cache.Ingest(context.Background(), f, d, int64(len(b)), true); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(ocispec.MediaTypeImageConfig), Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayerGzip)}}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := oci.ValidateManifest(body, m.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(body)
	cm := &cache.Manifest{Descriptor: ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(body))}, Body: body}
	if err := r.cache.PushManifest(context.Background(), repo, cm, p, []string{tag}); err != nil {
		t.Fatal(err)
	}
	return d
}

// tagOn is what r answers for repo:tag.
func tagOn(t *testing.T, r *s3Replica, tag string) digest.Digest {
	t.Helper()
	m, err := r.cache.Manifest(t.Context(), repo, tag, tagAccept)
	if err != nil {
		t.Fatalf("%s: manifest %s:%s: %v", r.addr, repo, tag, err)
	}
	return m.Descriptor.Digest
}

// TestPushIntoANewRepositoryServedByEveryReplicaAtOnce: replica b holds
// a mirrored tag fresh for an hour in a repository nobody pushed to, so
// its pulls by tag read nothing from the bucket. A push of that tag
// through a, the repository's first, is what b answers the moment a
// acknowledged it: a announced it (b lists the bucket only hourly here),
// and b reads the repository's tags through from then on.
func TestPushIntoANewRepositoryServedByEveryReplicaAtOnce(t *testing.T) {
	h, rs := newS3Harness(t, 2, time.Hour)
	a, b := rs[0], rs[1]
	mirrored := mirrorTag(t, h, "v1")
	if got := tagOn(t, b, "v1"); got != mirrored {
		t.Fatalf("b's mirrored v1 is %s, want %s", got, mirrored)
	}
	before := b.s3Reads(t)
	if got := tagOn(t, b, "v1"); got != mirrored {
		t.Fatalf("b's mirrored v1 is %s, want %s", got, mirrored)
	}
	if n := b.s3Reads(t) - before; n != 0 {
		t.Fatalf("a hit on a mirrored tag read the bucket %v times, want 0", n)
	}

	pushed := pushTag(t, a, "v1")
	if got := tagOn(t, b, "v1"); got != pushed {
		t.Fatalf("b answers v1 = %s right after the push through a, want the pushed %s", got, pushed)
	}
	if n := testutil.ToFloat64(a.metrics.PeerRequests.WithLabelValues("announce_failed")); n != 0 {
		t.Errorf("%v announcements failed", n)
	}
	// Moved again through a: b reads the repository's tags through now.
	moved := pushTag(t, a, "v1")
	if got := tagOn(t, b, "v1"); got != moved {
		t.Errorf("b answers v1 = %s after it moved through a, want %s", got, moved)
	}
}

// TestPushNotAnnouncedServedWithinTheListingPeriod: when b's peer
// listener refuses the announcement, the push is still acknowledged, and
// b serves the pushed tag once its next listing of the bucket finds the
// repository.
func TestPushNotAnnouncedServedWithinTheListingPeriod(t *testing.T) {
	const every = 200 * time.Millisecond
	h, rs := newS3Harness(t, 2, every)
	a, b := rs[0], rs[1]
	mirrored := mirrorTag(t, h, "v1")
	if got := tagOn(t, b, "v1"); got != mirrored {
		t.Fatalf("b's mirrored v1 is %s, want %s", got, mirrored)
	}
	b.refuse.Store(true)
	pushed := pushTag(t, a, "v1")
	acked := time.Now()
	if n := testutil.ToFloat64(a.metrics.PeerRequests.WithLabelValues("announce_failed")); n != 1 {
		t.Fatalf("%v announcements failed, want 1 (b refused it)", n)
	}
	for tagOn(t, b, "v1") != pushed {
		if time.Since(acked) > 20*every { // a loaded machine's slack over the period
			t.Fatalf("b still answers the mirrored v1 %s after the push was acknowledged", time.Since(acked))
		}
		time.Sleep(every / 10) // polling b's answer, not ordering goroutines
	}
	t.Logf("b served the pushed tag %s after the acknowledgement (listing every %s)", time.Since(acked).Round(time.Millisecond), every)
}

// ownerHoldingV1 starts two replicas on a bucket, mirrors v1 and pulls it
// through its owner o; other has not seen it.
func ownerHoldingV1(t *testing.T) (o, other *s3Replica, want digest.Digest) {
	t.Helper()
	h, rs := newS3Harness(t, 2, time.Hour)
	want = mirrorTag(t, h, "v1")
	owner := h.owner("tag\x00registry.test/" + repo.Path + ":v1")
	o, other = rs[owner], rs[1-owner]
	if got := tagOn(t, o, "v1"); got != want {
		t.Fatalf("the owner's v1 is %s, want %s", got, want)
	}
	return o, other, want
}

// TestPullByTagThroughAPeerReadsNothingFromTheBucket: in a repository
// nobody pushed to, a pull by tag that the tag's owner holds costs no
// read of the bucket, on the owner (a hit) nor on another replica that
// asks it (a miss there): the owner's answer is taken as stored, linked
// and shared by the owner.
func TestPullByTagThroughAPeerReadsNothingFromTheBucket(t *testing.T) {
	o, other, want := ownerHoldingV1(t)
	before := [2]float64{o.s3Reads(t), other.s3Reads(t)}
	if got := tagOn(t, o, "v1"); got != want {
		t.Fatalf("the owner's v1 is %s, want %s", got, want)
	}
	if got := tagOn(t, other, "v1"); got != want {
		t.Fatalf("the other replica's v1 is %s, want %s", got, want)
	}
	if n := testutil.ToFloat64(other.metrics.PeerRequests.WithLabelValues("ok")); n != 1 {
		t.Fatalf("the other replica's peer requests that succeeded: %v, want 1", n)
	}
	if n := o.s3Reads(t) - before[0]; n != 0 {
		t.Errorf("the owner read the bucket %v times, want 0", n)
	}
	if n := other.s3Reads(t) - before[1]; n != 0 {
		t.Errorf("the replica asking the owner read the bucket %v times, want 0", n)
	}
}

// TestPeerAnswerIsIndexedOnTheAskingReplica: a tag another replica
// answered is in the asking replica's index at once (its catalog of
// tagged images reads the index, not the hot set), its manifest counted
// once in the usage, and a pull of it by digest or tag again is a hit.
func TestPeerAnswerIsIndexedOnTheAskingReplica(t *testing.T) {
	_, other, want := ownerHoldingV1(t)
	if got := tagOn(t, other, "v1"); got != want {
		t.Fatalf("the other replica's v1 is %s, want %s", got, want)
	}
	tagged, err := other.cache.TaggedImages()
	if err != nil {
		t.Fatal(err)
	}
	if len(tagged) != 1 || tagged[0].Tag != "v1" || tagged[0].Descriptor.Digest != want {
		t.Errorf("the other replica's index holds %+v, want v1 at %s", tagged, want)
	}
	if _, items := other.cache.Usage(); items != 1 {
		t.Errorf("the other replica counts %d items, want 1 (the manifest)", items)
	}
	if m, err := other.cache.Manifest(t.Context(), repo, want.String(), tagAccept); err != nil || m.Fetched {
		t.Errorf("by digest on the other replica: fetched %v, %v; want a hit", m != nil && m.Fetched, err)
	}
	if got := tagOn(t, other, "v1"); got != want {
		t.Fatalf("the other replica's v1 is %s, want %s", got, want)
	}
	if n := testutil.ToFloat64(other.metrics.PeerRequests.WithLabelValues("ok")); n != 1 {
		t.Errorf("the other replica asked its peer %v times, want 1", n)
	}
}
