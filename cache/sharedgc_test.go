package cache

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// dropPuts drops, while on is set, the writes of records under prefix,
// answering as if they landed: as a full background queue loses them.
type dropPuts struct {
	Records
	prefix string
	on     *atomic.Bool
}

func (d dropPuts) Put(ctx context.Context, key string, data []byte, cond records.Cond) (string, error) {
	if d.on.Load() && strings.HasPrefix(key, d.prefix) {
		return "dropped", nil
	}
	return d.Records.Put(ctx, key, data, cond)
}

// adoptedX opens replicas A and B on bc, whose mirror/ writes drop
// drops: B pulls x:v1, A adopts it from the bucket's listing by size,
// and the bucket's mirror/ records are deleted and further ones dropped.
func adoptedX(t *testing.T, bc *bucketCluster, drop *atomic.Bool) (a, b *bucketReplica) {
	t.Helper()
	a, b = bc.replica(Options{}), bc.replica(Options{})
	b.pull(t, upRepo("team/x"), "v1")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v1/")
	ctx := context.Background()
	if err := a.adoptStored(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.deleteUnder(ctx, sharedMirrorDir, nil); err != nil {
		t.Fatal(err)
	}
	drop.Store(true)
	return a, b
}

// gcKeeps runs gc on r and fails for each of ds gone from the bucket.
func gcKeeps(t *testing.T, r *bucketReplica, ds []digest.Digest) {
	t.Helper()
	if _, err := r.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !r.inBucket(t, d) {
			t.Errorf("gc removed %s, which a tag or a pin reaches", d)
		}
	}
}

// wharf gc keeps what a replica's own tag reaches though it first knew
// the tag's manifest by size alone: A adopts X from the bucket's listing
// (B pulled it), the bucket's mirror/ records are gone and A's own is
// lost, and A pulls x:v1 itself. Its record of X's manifest is a
// manifest's now, with its references, and gc keeps X whole.
func TestGCKeepsWhatALocalTagOfAnAdoptedManifestReaches(t *testing.T) {
	bc := newBucketCluster(t)
	var drop atomic.Bool
	bc.records = func(r Records) Records { return dropPuts{Records: r, prefix: sharedMirrorDir, on: &drop} }
	x := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/x:v1", x)
	a, _ := adoptedX(t, bc, &drop)
	a.pull(t, upRepo("team/x"), "v1")
	xs := imageDigests(t, x)
	if meta, err := a.index.Blob(xs[0]); err != nil || meta.MediaType == "" || len(meta.Refs) != 3 {
		t.Errorf("a's record of X's manifest after its pull: %+v, %v; want its media type and 3 references", meta, err)
	}
	gcKeeps(t, a, xs)
}

// A replica's own tag of an index keeps the index's child manifests and
// their content, though the replica knows the children by size alone:
// A adopted X from the bucket and pulled only x:v1's index itself.
func TestGCKeepsTheChildrenOfALocalTagsIndex(t *testing.T) {
	bc := newBucketCluster(t)
	var drop atomic.Bool
	bc.records = func(r Records) Records { return dropPuts{Records: r, prefix: sharedMirrorDir, on: &drop} }
	x := upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)
	upstreamtest.PushIndex(t, bc.reg, "team/x:v1", x)
	a, _ := adoptedX(t, bc, &drop)
	ctx := context.Background()
	if _, err := a.Manifest(ctx, upRepo("team/x"), "v1", pullAccept); err != nil {
		t.Fatal(err)
	}
	xs := indexDigests(t, x)
	if meta, err := a.index.Blob(xs[1]); err != nil || meta.MediaType != "" {
		t.Fatalf("a's record of X's first child: %+v, %v; want it known by size alone, or the test proves nothing", meta, err)
	}
	gcKeeps(t, a, xs)
}

// A replica's own tag record says its manifest is one though the index
// knows it by size alone, and no recording of the manifest ever told it
// so: A rebuilt its index from the bucket, where B's mirrored tag landed
// and the manifest's link record did not. gc takes the manifest's media
// type from the tag and keeps X whole.
func TestGCReadsTheManifestALocalTagNames(t *testing.T) {
	bc := newBucketCluster(t)
	var drop atomic.Bool
	bc.records = func(r Records) Records { return dropPuts{Records: r, prefix: sharedLinksDir, on: &drop} }
	x := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/x:v1", x)
	drop.Store(true)
	b := bc.replica(Options{})
	b.pull(t, upRepo("team/x"), "v1")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v1/")
	a := bc.replica(Options{}) // rebuilt from the bucket: the tag, and X by size
	xs := imageDigests(t, x)
	recs, err := a.index.TagRecords(upRepo("team/x").String(), "v1")
	if err != nil || len(recs) == 0 {
		t.Fatalf("a's rebuilt tag records: %+v, %v; want x:v1's", recs, err)
	}
	if meta, err := a.index.Blob(xs[0]); err != nil || meta.MediaType != "" {
		t.Fatalf("a's record of X's manifest: %+v, %v; want it known by size alone, or the test proves nothing", meta, err)
	}
	if err := b.deleteUnder(context.Background(), sharedMirrorDir, nil); err != nil {
		t.Fatal(err)
	}
	gcKeeps(t, a, xs)
}

// Content a link record pins is kept with what it references, though the
// replica running gc knows the pinned manifest by size alone: the link
// says its media type. Here X's manifest alone is pinned in team/y (its
// references' links are mirrored ones: unpinned), and no tag reaches X.
func TestGCKeepsWhatAPinnedManifestReferences(t *testing.T) {
	bc := newBucketCluster(t)
	x := upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/x:v1", x)
	a := bc.replica(Options{})
	b := bc.replica(Options{})
	b.pull(t, upRepo("team/x"), "v1")
	b.waitRecord(t, "mirror/upstream/team%2Fx/v1/")
	ctx := context.Background()
	if err := b.deleteUnder(ctx, sharedMirrorDir, nil); err != nil {
		t.Fatal(err)
	}
	xs := imageDigests(t, x)
	m, err := x.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	link := sharedLink{Size: sumSizes(t, b, xs[:1]), MediaType: string(m.MediaType), Pinned: true}
	if err := b.putShared(ctx, mustKey(sharedLinkKey(upRepo("team/y"), xs[0])), link); err != nil {
		t.Fatal(err)
	}
	gcKeeps(t, a, xs)
	if meta, err := a.index.Blob(xs[0]); err != nil || len(meta.Refs) != 3 {
		t.Errorf("a's record of the pinned manifest: %+v, %v; want its 3 references", meta, err)
	}
}

// hangingList hangs, while on is set, a listing of exactly prefix until
// its context ends: a bucket that stopped answering.
type hangingList struct {
	Records
	prefix string
	on     *atomic.Bool
}

func (h hangingList) List(ctx context.Context, prefix string, fn func(string) error) error {
	if h.on.Load() && prefix == h.prefix {
		<-ctx.Done()
		return ctx.Err()
	}
	return h.Records.List(ctx, prefix, fn)
}

// Resolving storage.pins in the bucket is bounded by the caller's
// context, gc's run or the leader's lease, not the replica's life: a
// bucket that hangs there ends the run when that context ends, and
// nothing is removed.
func TestPlansEndWithTheirContext(t *testing.T) {
	bc := newBucketCluster(t)
	x := upRepo("team/x")
	var hang atomic.Bool
	bc.records = func(r Records) Records {
		return hangingList{Records: r, prefix: mustKey(sharedMirrorRepoPrefix(x)), on: &hang}
	}
	y := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/y:v1", y)
	a := bc.replica(Options{Pins: []Pin{{Repo: x}}, SharedEviction: true, MaxSize: 1 << 30})
	for _, d := range imageDigests(t, y)[1:] {
		a.readBlob(t, upRepo("team/y"), d) // fetched by digest: no tag reaches them
		waitFor(t, "a blob stored", func() bool { _, ok := a.HasContent(d); return ok })
	}
	a.opts.MaxSize = 1 // past the high watermark (only evictShared reads it)
	hang.Store(true)
	for _, run := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"gc", func(ctx context.Context) error { _, err := a.GC(ctx, false); return err }},
		{"the leader's eviction", func(ctx context.Context) error {
			_, n, err := a.evictShared(ctx, reportsSeen{})
			if err == nil && n > 0 {
				err = errors.New("evicted with the pins unresolved")
			}
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- run.fn(ctx) }()
		err := within(t, run.name+" to end with its context", done)
		cancel()
		if run.name == "gc" && !errors.Is(err, context.DeadlineExceeded) || run.name != "gc" && err != nil {
			t.Errorf("%s: %v", run.name, err)
		}
	}
	for _, d := range imageDigests(t, y)[1:] {
		if !a.inBucket(t, d) {
			t.Errorf("%s removed while the pins could not be resolved", d)
		}
	}
}

// wharf gc deletes the catalog's mirrored/ record of a repository with no
// tag record left in the bucket, and keeps those of repositories with a
// mirrored or a pushed tag; a dry run deletes none.
func TestGCDeletesMirroredRecordsOfRepositoriesWithoutTags(t *testing.T) {
	bc := newBucketCluster(t)
	for _, ref := range []string{"team/gone:v1", "team/kept:v1"} {
		upstreamtest.Push(t, bc.reg, ref, upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest))
	}
	a := bc.replica(Options{})
	b := bc.replica(Options{})
	b.pull(t, upRepo("team/gone"), "v1")
	b.pull(t, upRepo("team/kept"), "v1")
	b.waitRecord(t, "mirrored/upstream/team%2Fgone")
	b.waitRecord(t, "mirrored/upstream/team%2Fkept")
	ctx := context.Background()
	// team/pushed has a pushed tag and, from before, a mirrored/ record.
	pushed := upRepo("team/pushed")
	if err := b.putShared(ctx, mustKey(sharedMirroredKey(pushed)), struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := b.putShared(ctx, mustKey(sharedTagKey(pushed, "v1")), sharedTag{Digest: digest.FromString("m"), MediaType: "application/x", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.deleteUnder(ctx, mustKey(sharedMirrorRepoPrefix(upRepo("team/gone"))), nil); err != nil {
		t.Fatal(err)
	}
	catalog := func() []Repo {
		repos, err := a.Repositories()
		if err != nil {
			t.Fatal(err)
		}
		return repos
	}
	want := []Repo{upRepo("team/gone"), upRepo("team/kept"), pushed}
	if _, err := a.GC(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := catalog(); !slices.Equal(got, want) {
		t.Errorf("catalog after a dry run: %v, want %v", got, want)
	}
	if _, err := a.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := catalog(); !slices.Equal(got, want[1:]) {
		t.Errorf("catalog after gc: %v, want %v", got, want[1:])
	}
}

// A dry run reports only what the bucket holds: content this replica's
// index knows and the bucket lost is not there to remove.
func TestGCDryRunReportsWhatTheBucketHolds(t *testing.T) {
	bc := newBucketCluster(t)
	loose := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, bc.reg, "team/loose:v1", loose)
	a := bc.replica(Options{})
	layers := imageDigests(t, loose)[1:]
	for _, d := range layers {
		a.readBlob(t, upRepo("team/loose"), d) // by digest: no tag reaches them
		waitFor(t, "a blob stored", func() bool { _, ok := a.HasContent(d); return ok })
	}
	ctx := context.Background()
	if err := a.shared.Delete(ctx, layers[0]); err != nil {
		t.Fatal(err)
	}
	size, _ := a.HasContent(layers[1])
	if rep, err := a.GC(ctx, true); err != nil || rep != (GCReport{Items: 1, Bytes: size}) {
		t.Errorf("dry run: %+v, %v; want only %s, which the bucket holds (%d bytes)", rep, err, layers[1], size)
	}
}
