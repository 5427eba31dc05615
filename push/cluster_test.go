package push

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/writethrough"
)

// The replicas of a cluster as the tests build them: each a Writer over a
// Cache with a data directory of its own, over a tier in front of one
// MinIO bucket they all share, with the bucket's records as
// cache.Options.Records; one real registry upstream, behind a Faulty that
// counts what it is asked.

// minio is the MinIO server the tests that leave it running share
// (TestMain stops it).
var minio s3test.Shared

type cluster struct {
	t      *testing.T
	srv    *s3test.Server
	bucket string
	reg    *upstreamtest.Registry
	up     *upstreamtest.Faulty
	// recordsTimeout is the replicas' RecordsReadTimeout, s3Timeout their
	// S3 store's per-call timeout; 0 is the default.
	recordsTimeout, s3Timeout time.Duration
	// evictCap, when set, makes the replicas evict from the bucket as a
	// cluster's do (only while leading), under this cap.
	evictCap int64
	// writeThrough gives every replica the cluster's write-through: one
	// queue in the bucket, run by the replica whose Worker leads.
	writeThrough bool
}

func newCluster(t *testing.T, srv *s3test.Server) *cluster {
	reg := upstreamtest.NewRegistry(t)
	return &cluster{t: t, srv: srv, bucket: srv.Bucket(t), reg: reg, up: upstreamtest.NewFaulty(t, reg.URL)}
}

// replica is one wharf of the cluster.
type replica struct {
	*Writer
	c       *cache.Cache
	wt      *writethrough.Worker // with cluster.writeThrough
	m       *metrics.Metrics
	closeMu sync.Once
	closers []func() error
}

// close closes the replica, each part after what uses it; once.
func (r *replica) close() {
	r.closeMu.Do(func() {
		for _, f := range r.closers {
			f()
		}
	})
}

// replica opens a replica on dir, closed when the test ends.
func (cl *cluster) replica(dir string) *replica {
	t := cl.t
	t.Helper()
	ctx := context.Background()
	r := &replica{m: metrics.New(prometheus.NewRegistry())}
	t.Cleanup(r.close)
	fail := func(err error) *replica {
		t.Helper()
		r.close()
		t.Fatal(err)
		return nil
	}
	st, _, err := s3.Open(ctx, s3.Options{
		Endpoint: cl.srv.Endpoint, Bucket: cl.bucket, Region: "us-east-1",
		AccessKey: cl.srv.User, SecretKey: cl.srv.Key, PathStyle: true, Timeout: cl.s3Timeout,
	})
	if err != nil {
		return fail(err)
	}
	local, _, err := disk.Open(dir)
	if err != nil {
		st.Close()
		return fail(err)
	}
	tr, err := tier.New(ctx, local, st, tier.Options{})
	if err != nil {
		st.Close()
		return fail(err)
	}
	up, err := upstream.New(upstream.Options{URL: cl.up.URL, Name: "upstream"})
	if err != nil {
		tr.Close()
		st.Close()
		return fail(err)
	}
	c, err := cache.Open(cache.Options{
		Dir: dir, Store: tr, Records: st.Records(), RecordsReadTimeout: cl.recordsTimeout,
		Origins: []cache.Origin{up}, TagTTL: time.Hour, Metrics: r.m,
		SharedEviction: cl.evictCap > 0, MaxSize: cl.evictCap, SharedEvictEvery: 10 * time.Millisecond,
	})
	if err != nil {
		up.Close()
		tr.Close()
		st.Close()
		return fail(err)
	}
	r.closers = []func() error{c.Close, up.Close, tr.Close, st.Close}
	var wopts Options
	if cl.writeThrough {
		wt, err := writethrough.New(c, writethrough.SharedQueue{Records: st.Records()}, writethrough.Options{
			Shared: true, Poll: 20 * time.Millisecond, Origins: []cache.Origin{up}, Metrics: r.m,
		})
		if err != nil {
			return fail(err)
		}
		r.wt, wopts.WriteThrough = wt, wt
		r.closers = append([]func() error{wt.Close}, r.closers...)
	}
	w, err := New(c, wopts)
	if err != nil {
		return fail(err)
	}
	r.Writer, r.c = w, c
	r.closers = append([]func() error{w.Close}, r.closers...)
	return r
}

// repo is a repository of the cluster's upstream.
func (cl *cluster) repo(path string) cache.Repo {
	return cache.Repo{Upstream: "upstream", Path: path}
}

// image is what pushImage pushed.
type image struct {
	manifest digest.Digest
	blobs    []digest.Digest // config, then the layer
}

var ctx = context.Background()

func randomBlob(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushImage pushes an image of one random layer to repo through r, as a
// client does: the blobs, then the manifest under tag.
func pushImage(t *testing.T, r *replica, repo cache.Repo, tag string) (image, error) {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"nonce":"` + digest.FromBytes(randomBlob(t, 16)).Encoded() + `"}`)
	layer := randomBlob(t, 4096)
	var img image
	var descs []ocispec.Descriptor
	for i, b := range [][]byte{config, layer} {
		d := digest.FromBytes(b)
		if err := r.PutBlob(ctx, repo, "test", Chunk{Body: bytes.NewReader(b), Length: int64(len(b)), Start: -1, End: -1}, d); err != nil {
			return img, err
		}
		mt := ocispec.MediaTypeImageLayerGzip
		if i == 0 {
			mt = ocispec.MediaTypeImageConfig
		}
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))})
		img.blobs = append(img.blobs, d)
	}
	return img, pushManifest(t, r, repo, tag, descs[0], descs[1:], &img)
}

// pushManifest pushes a manifest of config and layers (already held by
// repo) under tag.
func pushManifest(t *testing.T, r *replica, repo cache.Repo, tag string, config ocispec.Descriptor, layers []ocispec.Descriptor, img *image) error {
	t.Helper()
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := r.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, bytes.NewReader(body), nil)
	if err != nil {
		return err
	}
	img.manifest = pm.Descriptor.Digest
	return nil
}

var accept = []string{ocispec.MediaTypeImageManifest + ", application/vnd.docker.distribution.manifest.v2+json"}

// servesImage fails t unless r serves img in repo under tag: the tag's
// manifest, then every blob's bytes.
func servesImage(t *testing.T, name string, r *replica, repo cache.Repo, tag string, img image) {
	t.Helper()
	m, err := r.Manifest(ctx, repo, tag, accept)
	if err != nil {
		t.Fatalf("%s: manifest %s:%s: %v", name, repo, tag, err)
	}
	if m.Descriptor.Digest != img.manifest {
		t.Fatalf("%s: %s:%s is %s, want %s", name, repo, tag, m.Descriptor.Digest, img.manifest)
	}
	for _, d := range img.blobs {
		if got := readBlob(t, r, repo, d); got != nil {
			t.Fatalf("%s: blob %s in %s: %v", name, d, repo, got)
		}
	}
}

// readBlob reads d in repo through r and checks its bytes; nil when it
// was served whole.
func readBlob(t *testing.T, r *replica, repo cache.Repo, d digest.Digest) error {
	t.Helper()
	b, err := r.Blob(ctx, repo, d)
	if err != nil {
		return err
	}
	defer b.Close()
	var rd io.Reader
	if b.File != nil {
		rd = b.File
	} else {
		rd = b.Fill.Reader(ctx, 0)
	}
	v := d.Verifier()
	if _, err := io.Copy(v, rd); err != nil {
		return err
	}
	if !v.Verified() {
		return errors.New("bytes do not match the digest")
	}
	return nil
}

// TestPushedThroughOneReplicaServedByAllAtOnce: a push, a re-push of the
// tag, a tag delete and a manifest delete through replica a are what
// replica b answers the moment a acknowledged them, tag listing included;
// and content linked to one repository is not served as another, on
// either replica.
func TestPushedThroughOneReplicaServedByAllAtOnce(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	a, b := cl.replica(t.TempDir()), cl.replica(t.TempDir())
	repo, other := cl.repo("team/app"), cl.repo("team/other")

	img, err := pushImage(t, a, repo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	servesImage(t, "b after the push through a", b, repo, "v1", img)
	if tags, _, err := b.Tags(ctx, repo, 100, ""); err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("b's tags of %s: %q, %v; want [v1]", repo, tags, err)
	}
	for _, r := range []*replica{a, b} {
		for _, d := range img.blobs {
			if err := readBlob(t, r, other, d); !errors.Is(err, cache.ErrNotFound) {
				t.Errorf("blob %s linked to %s only, read as %s: %v; want ErrNotFound", d, repo, other, err)
			}
		}
		if _, err := r.Manifest(ctx, other, img.manifest.String(), accept); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("manifest %s of %s read as %s: %v; want ErrNotFound", img.manifest, repo, other, err)
		}
	}

	img2, err := pushImage(t, a, repo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	servesImage(t, "b after the tag moved through a", b, repo, "v1", img2)

	if err := a.DeleteTag(ctx, repo, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Manifest(ctx, repo, "v1", accept); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("b after the tag's delete through a: %v; want ErrNotFound", err)
	}
	// No tag left, and none upstream: the repository is unknown.
	if tags, _, err := b.Tags(ctx, repo, 100, ""); !errors.Is(err, cache.ErrNotFound) && (err != nil || len(tags) != 0) {
		t.Errorf("b's tags after the delete: %q, %v; want none", tags, err)
	}
	// b still serves img2 by digest: deleting a tag deletes no content.
	if _, err := b.Manifest(ctx, repo, img2.manifest.String(), accept); err != nil {
		t.Fatalf("b, %s by digest after its tag's delete: %v", img2.manifest, err)
	}
	if err := a.DeleteManifest(ctx, repo, img2.manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Manifest(ctx, repo, img2.manifest.String(), accept); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("b after the manifest's delete through a: %v; want ErrNotFound", err)
	}
	if err := a.DeleteBlob(ctx, repo, img2.blobs[1]); err != nil {
		t.Fatal(err)
	}
	if err := readBlob(t, b, repo, img2.blobs[1]); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("b after the layer's delete through a: %v; want ErrNotFound", err)
	}
	// The first image, untouched by the deletes, is still b's by digest.
	if err := readBlob(t, b, repo, img.blobs[1]); err != nil {
		t.Errorf("b, a layer no delete touched: %v", err)
	}
}

// TestDeleteThroughOneReplicaKeepsWhatAnotherLinks: content pushed to two
// repositories through two replicas stays in the bucket when one
// repository deletes it: the other replica's repository still serves it.
func TestDeleteThroughOneReplicaKeepsWhatAnotherLinks(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	a, b := cl.replica(t.TempDir()), cl.replica(t.TempDir())
	x, y := cl.repo("team/x"), cl.repo("team/y")
	layer := randomBlob(t, 2048)
	d := digest.FromBytes(layer)
	for _, p := range []struct {
		r    *replica
		repo cache.Repo
	}{{a, x}, {b, y}} {
		if err := p.r.PutBlob(ctx, p.repo, "test", Chunk{Body: bytes.NewReader(layer), Length: int64(len(layer)), Start: -1, End: -1}, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteBlob(ctx, x, d); err != nil {
		t.Fatal(err)
	}
	c := cl.replica(t.TempDir()) // reads the bucket only
	if err := readBlob(t, c, y, d); err != nil {
		t.Fatalf("%s's blob after %s deleted it: %v", y, x, err)
	}
	if err := readBlob(t, c, x, d); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("%s after its delete: %v; want ErrNotFound", x, err)
	}
}

// TestEmptyReplicaServesTheClusterWithoutTheUpstream: a replica that
// starts with an empty data directory rebuilds its index from the bucket's
// records, and serves an image another replica pulled and one pushed,
// tags and content, with no request to the upstream; and a replica that
// never saw a mirrored tag serves it stale while the upstream is down.
func TestEmptyReplicaServesTheClusterWithoutTheUpstream(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	pulled := upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest)
	desc := upstreamtest.Push(t, cl.reg, "library/base:v1", pulled)
	base := cl.repo("library/base")
	var img image
	img.manifest = desc.Digest
	cfg, _ := pulled.ConfigName()
	img.blobs = append(img.blobs, digest.Digest(cfg.String()))
	layers, _ := pulled.Layers()
	for _, l := range layers {
		ld, _ := l.Digest()
		img.blobs = append(img.blobs, digest.Digest(ld.String()))
	}

	// d opens before anything is shared: it rebuilds nothing, and never
	// sees base:v1 until the upstream is down.
	d := cl.replica(t.TempDir())
	a := cl.replica(t.TempDir())
	servesImage(t, "a, pulling through the upstream", a, base, "v1", img)
	app := cl.repo("team/app")
	pushed, err := pushImage(t, a, app, "v1")
	if err != nil {
		t.Fatal(err)
	}
	a.close() // its background writes of the mirrored records end with it

	before := len(cl.up.Requests())
	c := cl.replica(t.TempDir())
	// Rebuilt with the pins: pushed content is never evicted here either.
	for _, d := range pushed.blobs {
		if !c.c.Pinned(d) {
			t.Errorf("pushed %s is not pinned in the rebuilt index", d)
		}
	}
	if c.c.Pinned(img.blobs[1]) {
		t.Errorf("pulled %s is pinned in the rebuilt index", img.blobs[1])
	}
	servesImage(t, "an empty replica, the pulled image", c, base, "v1", img)
	servesImage(t, "an empty replica, the pushed image", c, app, "v1", pushed)
	if n := len(cl.up.Requests()) - before; n != 0 {
		t.Errorf("the empty replica asked the upstream %d times (%v); want 0", n, cl.up.Requests()[before:])
	}

	// The upstream down: a replica that never saw base:v1 serves it stale
	// from the bucket's record.
	cl.up.SetFault(func(*http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
	})
	m, err := d.Manifest(ctx, base, "v1", accept)
	if err != nil || m.Descriptor.Digest != img.manifest {
		t.Fatalf("a replica that never saw %s:v1, upstream down: %v, %v; want %s served stale", base, m, err, img.manifest)
	}
}

// TestBucketDownFailsPushesNotHits: with the bucket frozen, a push is not
// acknowledged (its records cannot be written) and is not what any
// replica serves once the bucket is back, while content and tags this
// replica holds keep being served from its local tier and index.
func TestBucketDownFailsPushesNotHits(t *testing.T) {
	srv := s3test.Own(t)
	cl := newCluster(t, srv)
	cl.recordsTimeout, cl.s3Timeout = 300*time.Millisecond, 2*time.Second
	a := cl.replica(t.TempDir())
	repo := cl.repo("team/app")
	img, err := pushImage(t, a, repo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	var descs []ocispec.Descriptor
	for i, d := range img.blobs {
		size, err := a.StatBlob(ctx, repo, d)
		if err != nil {
			t.Fatal(err)
		}
		mt := ocispec.MediaTypeImageLayerGzip
		if i == 0 {
			mt = ocispec.MediaTypeImageConfig
		}
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
	}

	srv.Freeze(t)
	t.Cleanup(srv.Thaw) // before the replicas close, if the test stops early
	// A pinned layer's link is checked in the bucket on use: the first
	// read finds it frozen, and is served from what a knows.
	if err := readBlob(t, a, repo, img.blobs[1]); err != nil {
		t.Fatalf("a local hit with the bucket frozen: %v", err)
	}
	// The same manifest under a second tag: its bytes are stored, so
	// only its records need the bucket.
	var moved image
	if err := pushManifest(t, a, repo, "v2", descs[0], descs[1:], &moved); !errors.Is(err, cache.ErrStoreUnavailable) {
		t.Fatalf("a push with the bucket frozen: %v; want ErrStoreUnavailable, not acknowledged", err)
	}
	servesImage(t, "a, the bucket frozen", a, repo, "v1", img)
	srv.Thaw()
	// The read of the pinned link's record failed; the push failed before
	// its records, on the bucket's copy of the manifest (what a push pins
	// must be in the bucket, not only in a's local copy).
	if n := testutil.ToFloat64(a.m.RecordsErrors.WithLabelValues("get")); n < 1 {
		t.Errorf("wharf_records_errors_total{op=\"get\"} = %v with the bucket frozen; want at least 1", n)
	}

	b := cl.replica(t.TempDir())
	for name, r := range map[string]*replica{"a": a, "b": b} {
		// a takes the store for down for 5 s after it last failed
		// (storeDownFor): its misses meanwhile are refused as such.
		m, err := r.Manifest(ctx, repo, "v2", accept)
		for deadline := time.Now().Add(10 * time.Second); errors.Is(err, cache.ErrStoreUnavailable) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			m, err = r.Manifest(ctx, repo, "v2", accept)
		}
		if !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("%s, the failed push's tag: %v, %v; want ErrNotFound", name, m, err)
		}
	}
	servesImage(t, "b, the bucket back", b, repo, "v1", img)
}

// TestMountAcrossReplicas: a blob pushed to one repository through a
// mounts into another through b (b learns the source's link from the
// bucket), and a serves it there too; a mount from a repository that does
// not hold it mounts nothing, on either replica.
func TestMountAcrossReplicas(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	a, b := cl.replica(t.TempDir()), cl.replica(t.TempDir())
	src, dst, other := cl.repo("team/src"), cl.repo("team/dst"), cl.repo("team/other")
	layer := randomBlob(t, 2048)
	d := digest.FromBytes(layer)
	if err := a.PutBlob(ctx, src, "test", Chunk{Body: bytes.NewReader(layer), Length: int64(len(layer)), Start: -1, End: -1}, d); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Mount(ctx, dst, &other, false, d); ok || err != nil {
		t.Fatalf("b mounted %s from %s, which does not hold it: %v, %v", d, other, ok, err)
	}
	if ok, err := b.Mount(ctx, dst, &src, false, d); !ok || err != nil {
		t.Fatalf("b, mount from %s: %v, %v; want mounted", src, ok, err)
	}
	if err := readBlob(t, a, dst, d); err != nil {
		t.Errorf("a, the blob b mounted into %s: %v", dst, err)
	}
	if err := readBlob(t, a, other, d); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("a, the blob as %s: %v; want ErrNotFound", other, err)
	}
}

// TestEvictionForgetsSharedLinks: content eviction takes from the bucket
// leaves no link records vouching for it, while pushed content's stay.
func TestEvictionForgetsSharedLinks(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	pulled := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)
	desc := upstreamtest.Push(t, cl.reg, "library/base:v1", pulled)
	a := cl.replica(t.TempDir())
	base := cl.repo("library/base")
	if _, err := a.Manifest(ctx, base, "v1", accept); err != nil {
		t.Fatal(err)
	}
	pushed, err := pushImage(t, a, cl.repo("team/app"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, n := a.c.Evict(0); n == 0 {
		t.Fatal("evicted nothing")
	}
	a.close() // its background deletes end with it
	keys := strings.Join(cl.srv.Keys(t, cl.bucket, "records/links/"), "\n")
	if strings.Contains(keys, desc.Digest.Encoded()) {
		t.Errorf("the evicted manifest %s still has link records:\n%s", desc.Digest, keys)
	}
	for _, d := range append(pushed.blobs, pushed.manifest) {
		if !strings.Contains(keys, d.Encoded()) {
			t.Errorf("pushed %s lost its link record to eviction:\n%s", d, keys)
		}
	}
}

// TestSharedEvictionKeepsWhatAnotherReplicaPushed: the replica leading
// eviction may know content another replica pushed only as unpinned
// (adopted from the bucket's listing at its start, or fetched through a
// mirrored repository); it asks the bucket's link records before it
// deletes, and keeps anything pinned there.
func TestSharedEvictionKeepsWhatAnotherReplicaPushed(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	cl.evictCap = 1 // everything is past it
	pulled := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)
	desc := upstreamtest.Push(t, cl.reg, "library/base:v1", pulled)

	bDir := t.TempDir()
	b := cl.replica(bDir)
	if _, err := b.Manifest(ctx, cl.repo("library/base"), "v1", accept); err != nil {
		t.Fatal(err)
	}
	b.close() // its index is not empty: the next start reconciles, not rebuilds

	a := cl.replica(t.TempDir())
	pushed, err := pushImage(t, a, cl.repo("team/app"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	b = cl.replica(bDir) // adopts a's pushed content by its size, unpinned
	for _, d := range append(pushed.blobs, pushed.manifest) {
		if _, ok := b.c.HasContent(d); !ok {
			t.Fatalf("b did not adopt %s from the bucket at its start", d)
		}
	}
	leadCtx, stop := context.WithCancel(ctx)
	led := make(chan struct{})
	go func() { b.c.LeadEviction(leadCtx); close(led) }()
	inBucket := func(d digest.Digest) bool {
		keys := strings.Join(cl.srv.Keys(t, cl.bucket, "blobs/"), "\n")
		return strings.Contains(keys, d.Encoded())
	}
	for deadline := time.Now().Add(15 * time.Second); inBucket(desc.Digest); {
		if time.Now().After(deadline) {
			t.Fatal("b, leading, did not evict the mirrored image")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-led
	for _, d := range append(pushed.blobs, pushed.manifest) {
		if !inBucket(d) {
			t.Errorf("b evicted %s, pushed through a", d)
		}
	}
}

// TestWriteThroughRunByAnotherReplica: a push taken by a replica that does
// not lead the cluster's write-through reaches the upstream through the
// one that does, which reads the manifest and its blobs from the bucket
// though its own index never saw them.
func TestWriteThroughRunByAnotherReplica(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	cl.writeThrough = true
	a, b := cl.replica(t.TempDir()), cl.replica(t.TempDir())
	pushed, err := pushImage(t, a, cl.repo("team/app"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	leadCtx, stop := context.WithCancel(ctx)
	led := make(chan struct{})
	go func() { b.wt.Lead(leadCtx); close(led) }()
	defer func() { stop(); <-led }()
	up, err := upstream.New(upstream.Options{URL: cl.reg.URL, Name: "check"})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		desc, err := up.HeadManifest(ctx, "team/app", "v1", oci.ServedManifests)
		if err == nil {
			if desc.Digest != pushed.manifest {
				t.Fatalf("the upstream has team/app:v1 = %s, want %s", desc.Digest, pushed.manifest)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the push through a never reached the upstream: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range pushed.blobs {
		if _, err := up.HeadBlob(ctx, "team/app", d); err != nil {
			t.Errorf("blob %s not on the upstream: %v", d, err)
		}
	}
	if n := testutil.ToFloat64(a.m.WriteThroughPushed); n != 0 {
		t.Errorf("a, not leading, pushed %v jobs to the upstream", n)
	}
}
