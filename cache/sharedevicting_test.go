package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/oci"
)

var pushRepo = Repo{Upstream: "upstream", Path: "team/app"}

// pushKinds are the pushes that link content already in the bucket
// without uploading it; each reports whether the push was acknowledged.
var pushKinds = []struct {
	name string
	push func(r *evictReplica, d digest.Digest, body []byte) (bool, error)
}{
	{"upload skipped", func(r *evictReplica, d digest.Digest, body []byte) (bool, error) {
		ctx := context.Background()
		if err := r.putBytes(ctx, d, body); err != nil { // the bucket has d: no upload
			return false, err
		}
		if err := r.recordContent(d, int64(len(body)), "", nil, true); err != nil {
			return false, err
		}
		return true, r.LinkUploaded(context.Background(), pushRepo, d)
	}},
	{"mount", func(r *evictReplica, d digest.Digest, body []byte) (bool, error) {
		if err := r.recordContent(d, int64(len(body)), "", nil, true); err != nil { // imported here once
			return false, err
		}
		return r.Mount(context.Background(), pushRepo, nil, true, d)
	}},
}

// race runs the push of kind through b while a deletes d with del,
// paused at step (see Cache.evictStep) until the push has found d's
// evicting record. It returns what del returned (whether a deleted d),
// whether the push was acknowledged, and its error.
func race(t *testing.T, a, b *evictReplica, d digest.Digest, body []byte, step string, del func() bool, push func(*evictReplica, digest.Digest, []byte) (bool, error)) (evicted, acked bool, err error) {
	t.Helper()
	paused, resume, seen := make(chan struct{}), make(chan struct{}), make(chan struct{})
	a.evictStep = func(s string, x digest.Digest) {
		if s == step && x == d {
			close(paused)
			<-resume
		}
	}
	b.evictingSeen = func(x digest.Digest) {
		if x == d {
			close(seen)
		}
	}
	evicting := make(chan bool, 1)
	go func() { evicting <- del() }()
	within(t, "a to reach "+step, paused)
	type result struct {
		acked bool
		err   error
	}
	pushed := make(chan result, 1)
	go func() {
		acked, err := push(b, d, body)
		pushed <- result{acked, err}
	}()
	within(t, "b's push to find d's evicting record", seen)
	close(resume)
	evicted = within(t, "a's eviction", evicting)
	res := within(t, "b's push", pushed)
	return evicted, res.acked, res.err
}

// TestEvictionRacingAPushRefusesIt: the leader has found no pinned link
// to d and is about to delete it when a push through another replica
// links d, found in the bucket. The push sees the evicting record, waits,
// finds d gone and is refused (a mount is declined), never acknowledged;
// the pushing replica forgets d, so the client's retry uploads it, and
// then every pinned link in the bucket has its content.
func TestEvictionRacingAPushRefusesIt(t *testing.T) {
	for _, kind := range pushKinds {
		t.Run(kind.name, func(t *testing.T) {
			bk := newBucket(t)
			a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
			body := randomBytes(4096)
			d := a.storeBytes(t, body, false) // fetched through a: unpinned
			evict := func() bool { return a.evictOne(context.Background(), d, int64(len(body))) }
			evicted, acked, err := race(t, a, b, d, body, "checked", evict, kind.push)
			if !evicted {
				t.Fatal("a kept d: the race did not happen")
			}
			switch kind.name {
			case "mount":
				if acked || err != nil {
					t.Fatalf("mount of evicted content: %v, %v; want declined (false, nil)", acked, err)
				}
			default:
				if !errors.Is(err, ErrEvicted) {
					t.Fatalf("push of evicted content: %v; want ErrEvicted", err)
				}
			}
			if n := testutil.ToFloat64(b.m.ClusterEvictHandshakes.WithLabelValues("refused")); n != 1 {
				t.Errorf("refused handshakes = %v, want 1", n)
			}
			// b answers for d no more: a HEAD misses, a mount declines.
			if _, ok := b.HasContent(d); ok {
				t.Error("b still indexes d")
			}
			if _, err := b.store.Stat(context.Background(), d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("b's store still finds d (%v): a HEAD would skip the upload", err)
			}
			if ok, err := b.Mount(context.Background(), pushRepo, nil, true, d); ok || err != nil {
				t.Errorf("b mounts d after it was refused: %v, %v", ok, err)
			}

			// The client's retry uploads d again, and is acknowledged.
			if _, err := pushKinds[0].push(b, d, body); err != nil {
				t.Fatalf("the retried push: %v", err)
			}
			if !bk.inBucket(d) {
				t.Fatal("the retried push left d out of the bucket")
			}
			bk.pinnedLinksHaveObjects()
			bk.noEvictingLeft()
		})
	}
}

// TestEvictionKeepsWhatAPushLinksMeanwhile: a push that links d after the
// leader took d's evicting record, but before the leader checked its
// links, waits for the leader, which sees the pinned link and keeps d;
// the push is then acknowledged.
func TestEvictionKeepsWhatAPushLinksMeanwhile(t *testing.T) {
	for _, kind := range pushKinds {
		t.Run(kind.name, func(t *testing.T) {
			bk := newBucket(t)
			a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
			body := randomBytes(4096)
			d := a.storeBytes(t, body, false)
			evict := func() bool { return a.evictOne(context.Background(), d, int64(len(body))) }
			evicted, acked, err := race(t, a, b, d, body, "taken", evict, kind.push)
			if evicted {
				t.Fatal("a evicted d, which b's push had linked")
			}
			if !acked || err != nil {
				t.Fatalf("the push: %v, %v; want acknowledged", acked, err)
			}
			if n := testutil.ToFloat64(b.m.ClusterEvictHandshakes.WithLabelValues("kept")); n != 1 {
				t.Errorf("kept handshakes = %v, want 1", n)
			}
			if n := testutil.ToFloat64(a.m.ClusterEvictSpared.WithLabelValues("pinned")); n != 1 {
				t.Errorf("spared as pinned = %v, want 1", n)
			}
			if !bk.inBucket(d) {
				t.Fatal("d left the bucket")
			}
			bk.pinnedLinksHaveObjects()
			bk.noEvictingLeft()
		})
	}
}

// TestDeleteRacingAPushRefusesIt: a delete through a that unlinks d's
// last repository removes d from the bucket under the same handshake:
// a push through b that linked d meanwhile is refused, never
// acknowledged, and its retry uploads d again.
func TestDeleteRacingAPushRefusesIt(t *testing.T) {
	bk := newBucket(t)
	a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
	body := randomBytes(4096)
	d := a.storeBytes(t, body, false)
	gone := Repo{Upstream: "upstream", Path: "team/old"}
	if err := a.linkLocal(gone, d); err != nil {
		t.Fatal(err)
	}
	del := func() bool { return a.Unlink(gone, d) == nil && !bk.inBucket(d) }
	deleted, _, err := race(t, a, b, d, body, "checked", del, pushKinds[0].push)
	if !deleted {
		t.Fatal("a's delete kept d: the race did not happen")
	}
	if !errors.Is(err, ErrEvicted) {
		t.Fatalf("push of deleted content: %v; want ErrEvicted", err)
	}
	if _, err := pushKinds[0].push(b, d, body); err != nil {
		t.Fatalf("the retried push: %v", err)
	}
	bk.pinnedLinksHaveObjects()
	bk.noEvictingLeft()
}

// TestEvictionHandshakeWithoutARace: with no push racing it, eviction
// evicts what nothing pins and keeps what a push pinned; with no eviction
// racing it, a push (an upload) is acknowledged; no handshake is counted
// and no evicting record is left.
func TestEvictionHandshakeWithoutARace(t *testing.T) {
	bk := newBucket(t)
	a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
	cold := a.storeBytes(t, randomBytes(4096), false)
	body := randomBytes(4096)
	pushed := digest.FromBytes(body)
	if _, err := pushKinds[0].push(b, pushed, body); err != nil { // uploads: not in the bucket yet
		t.Fatalf("the push: %v", err)
	}
	if err := a.recordContent(pushed, int64(len(body)), "", nil, false); err != nil { // as a's walk adopts it
		t.Fatal(err)
	}
	if !a.evictOne(context.Background(), cold, 4096) || bk.inBucket(cold) {
		t.Error("a did not evict the cold, unpinned item")
	}
	if a.evictOne(context.Background(), pushed, int64(len(body))) || !bk.inBucket(pushed) {
		t.Error("a evicted what b's push pinned")
	}
	for _, r := range []string{"kept", "refused", "stale"} {
		if n := testutil.ToFloat64(b.m.ClusterEvictHandshakes.WithLabelValues(r)); n != 0 {
			t.Errorf("%s handshakes = %v with no race", r, n)
		}
	}
	bk.pinnedLinksHaveObjects()
	bk.noEvictingLeft()
}

// TestDeadLeadersEvictingRecordIsWaitedOutAndSwept: a leader that died
// after taking d's evicting record delays a push of d by the record's
// bound at most (counted stale, acknowledged: d is in the bucket), and
// the next leader deletes the record once it has seen it unchanged for
// the bound. A record too large to read is aged and swept the same way
// (by its store time and version), with no failure of the bucket
// counted.
func TestDeadLeadersEvictingRecordIsWaitedOutAndSwept(t *testing.T) {
	for _, kind := range []string{"dead leader's", "oversized"} {
		t.Run(kind, func(t *testing.T) {
			bk := newBucket(t)
			a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
			a.evictingFor, b.evictingFor = 2*time.Second, 2*time.Second
			body := randomBytes(4096)
			d := a.storeBytes(t, body, false)
			key, err := sharedEvictingKey(d)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if kind == "oversized" {
				big := bytes.Repeat([]byte(" "), records.MaxSize+1)
				_, err = bk.srv.Admin(t).PutObject(ctx, bk.name, "records/"+key, bytes.NewReader(big), int64(len(big)), miniogo.PutObjectOptions{})
			} else {
				_, err = bk.shared.Records().Put(ctx, key, []byte(`{"by":"dead:5000"}`), records.IfAbsent())
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pushKinds[0].push(b, d, body); err != nil {
				t.Fatalf("the push, past a dead leader's record: %v", err)
			}
			if n := testutil.ToFloat64(b.m.ClusterEvictHandshakes.WithLabelValues("stale")); n != 1 {
				t.Errorf("stale handshakes = %v, want 1", n)
			}
			if n := testutil.ToFloat64(b.m.RecordsErrors.WithLabelValues("get")); n != 0 {
				t.Errorf("failed gets counted: %v; one record is no failure of the bucket", n)
			}

			seen := evictingSeen{}
			a.sweepEvicting(ctx, seen)
			if len(bk.keys(sharedEvictingDir)) != 1 {
				t.Fatal("the sweep deleted a record at its first sight")
			}
			first := seen[key]
			first.at = first.at.Add(-a.evictingFor) // seen unchanged for the whole bound
			seen[key] = first
			a.sweepEvicting(ctx, seen)
			bk.noEvictingLeft()
		})
	}
}

// TestPushThroughTheLeaderRefusesWhatItEvicts: the leader itself links
// d in a push (the push checked d was stored a moment before) after its
// eviction forgot d's index entry and before the bucket's delete (the
// upload's Ingest recorded d, and the eviction's plan came before). The
// push must be refused: a link it skipped for want of an index entry
// would be acknowledged with d gone from the bucket.
func TestPushThroughTheLeaderRefusesWhatItEvicts(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	body := randomBytes(4096)
	d := a.storeBytes(t, body, false)
	paused, resume := make(chan struct{}), make(chan struct{})
	a.evictStep = func(s string, x digest.Digest) {
		if s == "deleting" && x == d {
			close(paused)
			<-resume
		}
	}
	evicted := make(chan bool, 1)
	go func() { evicted <- a.evictOne(context.Background(), d, int64(len(body))) }()
	within(t, "a's eviction to forget d", paused)
	err := a.LinkUploaded(context.Background(), pushRepo, d)
	close(resume)
	if !within(t, "a's eviction", evicted) {
		t.Fatal("a kept d: the race did not happen")
	}
	if !errors.Is(err, ErrEvicted) {
		t.Fatalf("push through the leader of content it evicted: %v; want ErrEvicted", err)
	}
	if a.linkedHere(pushRepo, d) {
		t.Error("the refused push linked d")
	}
	bk.pinnedLinksHaveObjects()
	bk.noEvictingLeft()
}

// pushedManifest is an image manifest naming config and layer, as
// package push validates it.
func pushedManifest(t *testing.T, config, layer []byte) (*Manifest, oci.Pushed) {
	t.Helper()
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := oci.ValidateManifest(body, m.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	return &Manifest{Descriptor: ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}, Body: body}, p
}

// TestPushedManifestRefusedWhenAReferenceWasForgotten: a manifest push
// through b checked its layer d before another push through b found d
// evicted and forgot it. Linking the manifest's references must refuse
// the push, not skip d and acknowledge a manifest whose layer is gone.
func TestPushedManifestRefusedWhenAReferenceWasForgotten(t *testing.T) {
	bk := newBucket(t)
	a, b := bk.replica("a:5000", Options{}), bk.replica("b:5000", Options{})
	config, layer := randomBytes(100), randomBytes(4096)
	d := a.storeBytes(t, layer, false)
	b.storeBytes(t, config, true)
	if err := b.recordContent(d, int64(len(layer)), "", nil, false); err != nil { // as b's walk adopts it
		t.Fatal(err)
	}
	m, p := pushedManifest(t, config, layer) // validated: d was stored
	if !a.evictOne(context.Background(), d, int64(len(layer))) {
		t.Fatal("a kept d")
	}
	// Another push of d through b finds it gone, and b forgets it.
	if err := b.LinkUploaded(context.Background(), Repo{Upstream: "upstream", Path: "team/other"}, d); !errors.Is(err, ErrEvicted) {
		t.Fatalf("the other push: %v; want ErrEvicted", err)
	}
	if err := b.PushManifest(context.Background(), pushRepo, m, p, []string{"v1"}); !errors.Is(err, ErrEvicted) {
		t.Fatalf("manifest push naming evicted d: %v; want ErrEvicted", err)
	}
	key, err := sharedLinkKey(pushRepo, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.shared.Records().Get(context.Background(), key); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("the refused manifest push shared a link to d: %v", err)
	}
	if b.linkedHere(pushRepo, d) {
		t.Error("the refused manifest push linked d")
	}
}

// TestEvictionPastItsBoundKeepsTheItem: the leader checked d's links in
// time but then waits for the content lock (behind a slow delete, say)
// past half the record's bound. It must not delete then: a pusher may
// already have taken its record for a dead leader's and been
// acknowledged.
func TestEvictionPastItsBoundKeepsTheItem(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	a.evictingFor = 400 * time.Millisecond
	body := randomBytes(4096)
	d := a.storeBytes(t, body, false)
	locked := make(chan struct{})
	a.evictStep = func(s string, x digest.Digest) {
		if s == "checked" && x == d {
			a.contentMu.Lock() // released once the bound has passed
			close(locked)
		}
	}
	evicted := make(chan bool, 1)
	go func() { evicted <- a.evictOne(context.Background(), d, int64(len(body))) }()
	within(t, "a's eviction to check d", locked)
	<-time.After(a.evictingFor / 2) // the bound is what is tested: let it pass
	a.contentMu.Unlock()
	if within(t, "a's eviction", evicted) {
		t.Fatal("a evicted d past half the evicting record's bound")
	}
	if !bk.inBucket(d) || !a.knows(d) {
		t.Error("d left the bucket or a's index")
	}
	if n := testutil.ToFloat64(a.m.ClusterEvictSpared.WithLabelValues("slow")); n != 1 {
		t.Errorf("spared as slow = %v, want 1", n)
	}
	bk.noEvictingLeft()
}

// TestDeleteAsksTheBucketOutsideTheContentLock: a delete's handshake
// (its evicting record, the listing of d's links) runs without the
// content lock that every fill's commit takes, so a slow bucket does
// not stall them.
func TestDeleteAsksTheBucketOutsideTheContentLock(t *testing.T) {
	bk := newBucket(t)
	a := bk.replica("a:5000", Options{})
	body := randomBytes(4096)
	d := a.storeBytes(t, body, false)
	gone := Repo{Upstream: "upstream", Path: "team/old"}
	if err := a.linkLocal(gone, d); err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	a.evictStep = func(s string, x digest.Digest) {
		if x != d || s == "deleting" { // which is under the lock
			return
		}
		if !a.contentMu.TryLock() {
			t.Errorf("the content lock is held at step %q", s)
			return
		}
		a.contentMu.Unlock()
		steps[s] = true
	}
	if err := a.Unlink(gone, d); err != nil {
		t.Fatal(err)
	}
	if !steps["taken"] || !steps["checked"] {
		t.Errorf("steps seen free of the lock: %v", steps)
	}
	if bk.inBucket(d) || a.knows(d) {
		t.Error("the delete of d's last link left d")
	}
	bk.noEvictingLeft()
}

// afterGet calls hook after each read of a record.
type afterGet struct {
	Records
	hook func(key string)
}

func (a afterGet) Get(ctx context.Context, key string) (records.Record, error) {
	r, err := a.Records.Get(ctx, key)
	a.hook(key)
	return r, err
}

// TestSweepSparesARecordTakenAgain: a stale evicting record released
// and taken again by a live leader after the sweep read it is not
// deleted: the sweep reads it again just before its delete.
func TestSweepSparesARecordTakenAgain(t *testing.T) {
	bk := newBucket(t)
	key, err := sharedEvictingKey(digest.FromString("d"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(by string) { // a record's bytes differ from taking to taking (its since)
		if _, err := bk.shared.Records().Put(ctx, key, []byte(`{"by":"`+by+`"}`), records.IfAbsent()); err != nil {
			t.Error(err)
		}
	}
	var once sync.Once
	retake := func(k string) {
		if k != key {
			return
		}
		once.Do(func() { // released and taken again
			if err := bk.shared.Records().Delete(ctx, key); err != nil {
				t.Error(err)
			}
			put("live:5000")
		})
	}
	var armed atomic.Bool
	bk.records = func(r Records) Records {
		return afterGet{r, func(k string) {
			if armed.Load() {
				retake(k)
			}
		}}
	}
	a := bk.replica("a:5000", Options{})
	put("dead:5000")
	seen := evictingSeen{}
	a.sweepEvicting(ctx, seen)
	first := seen[key]
	first.at = first.at.Add(-a.evictingFor) // seen unchanged for the whole bound
	seen[key] = first
	armed.Store(true)
	a.sweepEvicting(ctx, seen)
	if len(bk.keys(sharedEvictingDir)) != 1 {
		t.Fatal("the sweep deleted a record taken again after it read it")
	}
}

// TestPushWaitEndsWithItsRequest: a push waiting out an eviction of d
// stops when its request ends, not when the record's bound does.
func TestPushWaitEndsWithItsRequest(t *testing.T) {
	bk := newBucket(t)
	b := bk.replica("b:5000", Options{})
	body := randomBytes(4096)
	d := b.storeBytes(t, body, true)
	key, err := sharedEvictingKey(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.shared.Records().Put(context.Background(), key, []byte(`{"by":"a:5000"}`), records.IfAbsent()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.evictingSeen = func(digest.Digest) { cancel() } // the client goes away
	done := make(chan error, 1)
	go func() { done <- b.LinkUploaded(ctx, pushRepo, d) }()
	if err := within(t, "the push to end with its request", done); !errors.Is(err, context.Canceled) {
		t.Errorf("the push: %v; want context.Canceled", err)
	}
}
