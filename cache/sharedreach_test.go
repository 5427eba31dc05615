package cache

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// Replicas on one real MinIO bucket, each a Cache with a data directory
// of its own over a tier in front of the bucket, the bucket's records as
// Options.Records, and one real registry as upstream: what the cluster's
// reachability (pins in the evicting leader, gc, the catalog) is about.

type bucketCluster struct {
	t      *testing.T
	srv    *s3test.Server
	bucket string
	reg    *upstreamtest.Registry
	// records, when set, wraps each replica's records (for faults).
	records func(Records) Records
}

func newBucketCluster(t *testing.T) *bucketCluster {
	srv := s3test.Own(t)
	return &bucketCluster{t: t, srv: srv, bucket: srv.Bucket(t), reg: upstreamtest.NewRegistry(t)}
}

// bucketReplica is one replica, with its bucket store for the test to
// look at.
type bucketReplica struct {
	*Cache
	shared *s3.Store
}

// replica opens a replica with opts (Dir, Store, Records and Origins are
// set here), closed when the test ends.
func (bc *bucketCluster) replica(opts Options) *bucketReplica {
	t := bc.t
	t.Helper()
	ctx := context.Background()
	st, _, err := s3.Open(ctx, s3.Options{
		Endpoint: bc.srv.Endpoint, Bucket: bc.bucket, Region: "us-east-1",
		AccessKey: bc.srv.User, SecretKey: bc.srv.Key, PathStyle: true,
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
	up, err := upstream.New(upstream.Options{URL: bc.reg.URL, Name: "upstream"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	opts.Dir, opts.Store, opts.Records, opts.Origins = dir, tr, st.Records(), []Origin{up}
	if bc.records != nil {
		opts.Records = bc.records(opts.Records)
	}
	if opts.TagTTL == 0 {
		opts.TagTTL = time.Hour
	}
	c, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // first: the cache before the stores under it
	return &bucketReplica{Cache: c, shared: st}
}

var pullAccept = []string{"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"}

var upRepo = func(path string) Repo { return Repo{Upstream: "upstream", Path: path} }

// pull pulls ref (a tag or a digest) of repo through r as a client does,
// every manifest of an index and every blob, and waits until all of it
// is stored.
func (r *bucketReplica) pull(t *testing.T, repo Repo, ref string) {
	t.Helper()
	ctx := context.Background()
	m, err := r.Manifest(ctx, repo, ref, pullAccept)
	if err != nil {
		t.Fatalf("pull %s:%s: %v", repo, ref, err)
	}
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, child := range p.Manifests {
		r.pull(t, repo, child.Digest.String())
	}
	for _, b := range p.Blobs {
		r.readBlob(t, repo, b.Digest)
	}
	for _, d := range append(p.Refs(), m.Descriptor.Digest) {
		waitFor(t, "the pull's content to be stored", func() bool { _, ok := r.HasContent(d); return ok })
	}
}

func (r *bucketReplica) readBlob(t *testing.T, repo Repo, d digest.Digest) {
	t.Helper()
	ctx := context.Background()
	b, err := r.Blob(ctx, repo, d)
	if err != nil {
		t.Fatalf("blob %s: %v", d, err)
	}
	defer b.Close()
	var rd io.Reader = b.File
	if b.File == nil {
		rd = b.Fill.Reader(ctx, 0)
	}
	v := d.Verifier()
	if _, err := io.Copy(v, rd); err != nil || !v.Verified() {
		t.Fatalf("blob %s: %v, verified %v", d, err, v.Verified())
	}
}

// inBucket reports whether the bucket holds d.
func (r *bucketReplica) inBucket(t *testing.T, d digest.Digest) bool {
	t.Helper()
	_, err := r.shared.Stat(context.Background(), d)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// waitRecord waits until the bucket holds a record under prefix: a
// replica's background write landed.
func (r *bucketReplica) waitRecord(t *testing.T, prefix string) {
	t.Helper()
	waitFor(t, "a record under "+prefix, func() bool {
		found := false
		err := r.shared.Records().List(context.Background(), prefix, func(string) error { found = true; return nil })
		return err == nil && found
	})
}

// imageDigests is what pulling img stores: its manifest, config, layers.
func imageDigests(t *testing.T, img v1.Image) []digest.Digest {
	t.Helper()
	m, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{digest.Digest(m.String()), digest.Digest(c.String())}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, digest.Digest(d.String()))
	}
	return out
}

// indexDigests is what pulling idx whole stores: the index, and each
// child image's content.
func indexDigests(t *testing.T, idx v1.ImageIndex) []digest.Digest {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{digest.Digest(d.String())}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, imageDigests(t, img)...)
	}
	return out
}

func sumSizes(t *testing.T, r *bucketReplica, ds []digest.Digest) int64 {
	t.Helper()
	var n int64
	for _, d := range ds {
		size, ok := r.HasContent(d)
		if !ok {
			t.Fatalf("%s not stored", d)
		}
		n += size
	}
	return n
}

// A pinned tag protects its whole image in the replica evicting from the
// bucket though that replica never pulled it: replica B pulled the pinned
// index X (two platforms), leader A knows X only from the bucket's
// listing, by size, unread; under pressure A evicts its own image Y, and
// x:v10 (whose key starts with the pinned v1's), and
// none of X's manifests or blobs.
func TestLeaderKeepsWhatAPinReachesThroughAnotherReplica(t *testing.T) {
	bc := newBucketCluster(t)
	x := upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)
	upstreamtest.PushIndex(t, bc.reg, "team/x:v1", x)
	y := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/y:v1", y)
	// A tag of X's repository the pin does not name, though its key
	// starts with the pinned tag's.
	z := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/x:v10", z)
	pins := []Pin{{Repo: upRepo("team/x"), Tag: "v1"}}

	// A opens on the empty bucket: its rebuild learns nothing of X.
	a := bc.replica(Options{Pins: pins, SharedEviction: true, MaxSize: 1 << 30})
	a.pull(t, upRepo("team/y"), "v1")
	b := bc.replica(Options{Pins: pins, SharedEviction: true, MaxSize: 1 << 30})
	b.pull(t, upRepo("team/x"), "v1")
	b.pull(t, upRepo("team/x"), "v10")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v1/")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v10/")
	// And a pushed record of v10, as a push through some replica writes:
	// its key starts with v1's.
	zm, err := z.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	zd := imageDigests(t, z)[0]
	if err := b.putShared(context.Background(), mustKey(sharedTagKey(upRepo("team/x"), "v10")),
		sharedTag{Digest: zd, MediaType: string(zm.MediaType), Size: sumSizes(t, b, []digest.Digest{zd})}); err != nil {
		t.Fatal(err)
	}
	xs, ys := indexDigests(t, x), append(imageDigests(t, y), imageDigests(t, z)...)
	for i, d := range xs {
		if _, err := a.index.Blob(d); err == nil {
			t.Fatalf("a knows %s (%d of %v) before its walk: the test would prove nothing", d, i, xs)
		}
	}

	// The cap: X's size, so that the low watermark asks for all but X's
	// content to go, and without the pin the leader would take X's too. (Only the eviction
	// below reads it: with SharedEviction nothing else does.)
	a.opts.MaxSize = sumSizes(t, b, xs)
	if _, _, err := a.evictShared(context.Background(), reportsSeen{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range xs {
		if !a.inBucket(t, d) {
			t.Errorf("the leader evicted %s of the pinned X", d)
		}
	}
	for _, d := range ys {
		if a.inBucket(t, d) {
			t.Errorf("the leader kept %s of the unpinned Y or x:v10", d)
		}
	}
	// What it read is known now: the index's record has its references.
	meta, err := a.index.Blob(xs[0])
	if err != nil || meta.MediaType == "" || len(meta.Refs) != 2 {
		t.Errorf("a's record of X's index: %+v, %v; want its media type and 2 references", meta, err)
	}
}

// failingLists fails listings under prefix while on is set.
type failingLists struct {
	Records
	prefix string
	on     *atomic.Bool
}

func (f failingLists) List(ctx context.Context, prefix string, fn func(string) error) error {
	if f.on.Load() && strings.HasPrefix(prefix, f.prefix) {
		return errors.New("injected: the bucket does not answer")
	}
	return f.Records.List(ctx, prefix, fn)
}

// A leader that cannot resolve its pins in the bucket evicts nothing on
// that pass (a pin it cannot see may protect anything), and evicts once
// the bucket answers again.
func TestLeaderEvictsNothingWhilePinsCannotBeResolved(t *testing.T) {
	bc := newBucketCluster(t)
	var failing atomic.Bool
	bc.records = func(r Records) Records { return failingLists{Records: r, prefix: sharedMirrorDir, on: &failing} }
	y := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/y:v1", y)
	a := bc.replica(Options{Pins: []Pin{{Repo: upRepo("team/x")}}, SharedEviction: true, MaxSize: 1 << 30})
	a.pull(t, upRepo("team/y"), "v1")
	ys := imageDigests(t, y)
	a.opts.MaxSize = sumSizes(t, a, ys) / 2 // only evictShared reads it

	failing.Store(true)
	if _, n, _ := a.evictShared(context.Background(), reportsSeen{}); n != 0 {
		t.Errorf("evicted %d items with the pins unresolved", n)
	}
	for _, d := range ys {
		if !a.inBucket(t, d) {
			t.Errorf("evicted %s with the pins unresolved", d)
		}
	}
	failing.Store(false)
	if _, n, err := a.evictShared(context.Background(), reportsSeen{}); err != nil || n == 0 {
		t.Errorf("evicted %d items, %v, once the bucket answers; want some", n, err)
	}
}

// wharf gc on replica A collects over the cluster's records: content only
// B's mirrored tag reaches stays, though A's own tags reach nothing of
// it; content no replica's tag reaches goes, A's and content only B
// knows (adopted from the bucket); a dry run reports just that and
// removes nothing.
func TestGCKeepsWhatAnyReplicasTagReaches(t *testing.T) {
	bc := newBucketCluster(t)
	x := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	xd := upstreamtest.Push(t, bc.reg, "team/x:v1", x)
	loose := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/loose:v1", loose)
	other := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/other:v1", other)

	a := bc.replica(Options{})
	b := bc.replica(Options{})
	// A pulls X by digest alone: its index holds X, and no tag of its
	// own reaches it. B pulls it by tag.
	a.pull(t, upRepo("team/x"), xd.Digest.String())
	b.pull(t, upRepo("team/x"), "v1")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v1/")
	// Reached by no tag: a layer A fetched by digest, one B did.
	looseLayer, otherLayer := imageDigests(t, loose)[2], imageDigests(t, other)[2]
	a.readBlob(t, upRepo("team/loose"), looseLayer)
	b.readBlob(t, upRepo("team/other"), otherLayer)
	for _, r := range []*bucketReplica{a, b} {
		for _, d := range []digest.Digest{looseLayer, otherLayer} {
			if r == a && d == otherLayer || r == b && d == looseLayer {
				continue
			}
			waitFor(t, "a layer stored", func() bool { _, ok := r.HasContent(d); return ok })
		}
	}

	ctx := context.Background()
	dry, err := a.GC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	looseSize, _ := a.HasContent(looseLayer)
	otherSize, _ := b.HasContent(otherLayer)
	if want := (GCReport{Items: 2, Bytes: looseSize + otherSize}); dry != want {
		t.Errorf("dry run: %+v, want the 2 untagged layers, %+v", dry, want)
	}
	for _, d := range []digest.Digest{looseLayer, otherLayer} {
		if !a.inBucket(t, d) {
			t.Errorf("the dry run removed %s", d)
		}
	}
	rep, err := a.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep != dry {
		t.Errorf("gc: %+v, want what the dry run said, %+v", rep, dry)
	}
	for _, d := range []digest.Digest{looseLayer, otherLayer} {
		if a.inBucket(t, d) {
			t.Errorf("gc kept %s, which no tag reaches", d)
		}
	}
	for _, d := range imageDigests(t, x) {
		if !a.inBucket(t, d) {
			t.Errorf("gc on A removed %s, which B's mirrored tag reaches", d)
		}
	}
}

// A repository mirrored through one replica is in every replica's
// catalog: A lists what B pulled, once B's background record landed.
func TestCatalogListsWhatAnyReplicaMirrored(t *testing.T) {
	bc := newBucketCluster(t)
	upstreamtest.Push(t, bc.reg, "team/mirrored:v1", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	a := bc.replica(Options{})
	b := bc.replica(Options{})
	b.pull(t, upRepo("team/mirrored"), "v1")
	b.waitRecord(t, "mirrored/")
	repos, err := a.Repositories()
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0] != upRepo("team/mirrored") {
		t.Errorf("a's catalog: %v, want the repository b mirrored", repos)
	}
	// One record per repository, whatever its tags.
	var keys []string
	if err := b.shared.Records().List(context.Background(), sharedMirroredDir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Errorf("mirrored/ records: %v, want one", keys)
	}
	if _, err := b.shared.Records().Get(context.Background(), "mirrored/upstream/team%2Fmirrored"); errors.Is(err, records.ErrNotFound) {
		t.Errorf("no record mirrored/upstream/team%%2Fmirrored: %v", keys)
	}
}
