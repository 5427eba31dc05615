package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The proofs of issue 13 (docs/cluster.md, step 8), each against real
// replicas, a real S3 store and a real HAProxy (clusterharness_test.go).

// TestClusterColdPullFetchesOnce: 3 replicas behind HAProxy round-robin;
// 16 clients pull the same cold image of 256 MiB in 4 layers at once
// through it: every pull verifies, and the upstream sends at most 1.02 ×
// the image's bytes, however the requests spread over the replicas.
func TestClusterColdPullFetchesOnce(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	img := bigImage(t, 4, 64<<20)
	want := upstreamtest.Push(t, c.Reg, "team/big:v1", img).Digest.String()
	size := imageBytes(t, img)
	c.Up.ResetCounts()

	const clients = 16
	ctx := proofContext(t, 2*time.Minute)
	start := time.Now()
	results := make([]pulled, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { results[i], errs[i] = pullVerified(ctx, c.LB.Addr, "team/big:v1", 1) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		} else if got := results[i].Manifest.String(); got != want {
			t.Errorf("client %d pulled %s, want %s", i, got, want)
		}
	}
	sent := c.Up.BlobBytes()
	ratio := float64(sent) / float64(size)
	t.Logf("%d clients pulled %d MiB each in %s; the upstream sent %d blob bytes (%.3f × the image, %d blob GETs); peers passed %.0f MiB",
		clients, size>>20, took.Round(time.Millisecond), sent, ratio, c.Up.BlobGets(), c.sumMetric(t, "wharf_peer_received_bytes_total")/(1<<20))
	if ratio > 1.02 {
		t.Errorf("the upstream sent %.3f × the image's blob bytes, want ≤ 1.02", ratio)
	}
	c.wantSpread(t)
}

// TestClusterChunkedPushThroughAnyReplica: a push through HAProxy whose
// requests land on every replica — chunked by hand (POST, PATCHes of
// 1 MiB with Content-Range, PUT), and go-containerregistry's streamed
// push as crane does it, and docker push where an engine answers — then
// pulls straight from each replica: the same digests everywhere. And a
// chunked push goes on after the replica that acknowledged a chunk dies.
func TestClusterChunkedPushThroughAnyReplica(t *testing.T) {
	c := startCluster(t, clusterOpts{extra: []string{"--anonymous-push=true"}})
	want := map[string]v1.Image{
		"site/chunked:v1": upstreamtest.RandomImage(t, 2, 3<<20, upstreamtest.OCIManifest),
		"site/crane:v1":   upstreamtest.RandomImage(t, 2, 1<<20, upstreamtest.DockerManifest),
	}
	lb := func(int) string { return "http://" + c.LB.Addr }
	pushChunked(t, lb, "site/chunked", "v1", want["site/chunked:v1"], 1<<20, nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if err := remote.Write(mustRef(t, c.LB.Addr+"/site/crane:v1"), want["site/crane:v1"], remote.WithTransport(tr)); err != nil {
		t.Fatalf("crane push through HAProxy: %v", err)
	}
	t.Run("docker", func(t *testing.T) {
		dk := needDocker(t)
		img := runnableImage(t, dockerRandomLayer(t), probeLayer(t))
		ref := fmt.Sprintf("%s/site/docker-%08x:v1", c.LB.Addr, mrand.Uint32())
		tar := filepath.Join(t.TempDir(), "image.tar")
		if err := tarball.WriteToFile(tar, mustParse(t, ref), img); err != nil {
			t.Fatal(err)
		}
		dk.images = append(dk.images, imageID(t, img))
		dk.run(t, "load", "-i", tar)
		// The engine compresses the layers it loaded as it pushes them, so
		// what it pushed is its own manifest: the digest it prints.
		out := dk.run(t, "push", ref)
		m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("docker push printed no digest:\n%s", out)
		}
		for _, r := range c.Replicas {
			checkPulled(t, r.Addr, strings.TrimPrefix(ref, c.LB.Addr+"/"), m[1])
		}
	})
	for _, r := range c.Replicas {
		series := `wharf_http_requests_total{method="PATCH",route="blob_upload",status="202"}`
		if n, _, err := r.metric(series); err != nil || n == 0 {
			t.Errorf("%s took %v PATCHes (%v): the pushes did not spread over the replicas", r.Name, n, err)
		}
		for ref, img := range want {
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			checkPulled(t, r.Addr, ref, d.String())
		}
	}
	// What a replica acknowledged survives its death: a chunked push whose
	// requests go to r0, r1, r2 in turn, straight; r1 is killed (-9) once
	// it has acknowledged the layer's first PATCH (request 4: the config
	// took a POST, a PATCH and a PUT, the layer's POST was 3), and the
	// push goes on through r0 and r2 from where r1 left it.
	survivor := upstreamtest.RandomImage(t, 1, 3<<20, upstreamtest.OCIManifest)
	dead := c.Replicas[1]
	alive := []*clusterReplica{c.Replicas[0], c.Replicas[2]}
	base := func(i int) string {
		if i <= 4 {
			return "http://" + c.Replicas[i%3].Addr
		}
		return "http://" + alive[i%2].Addr
	}
	pushChunked(t, base, "site/survivor", "v1", survivor, 1<<20, func(i int) {
		if i == 4 {
			dead.kill()
		}
	})
	survivorD, err := survivor.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alive {
		checkPulled(t, r.Addr, "site/survivor:v1", survivorD.String())
	}
}

// checkPulled pulls ref straight from the replica at addr and checks its
// manifest is want and every layer verifies.
func checkPulled(t *testing.T, addr, ref, want string) {
	t.Helper()
	got, err := remote.Image(mustRef(t, addr+"/"+ref), client(t)...)
	if err != nil {
		t.Errorf("pull %s from %s: %v", ref, addr, err)
		return
	}
	if d, err := got.Digest(); err != nil || d.String() != want {
		t.Errorf("pull %s from %s: %v (%v), want %s", ref, addr, d, err, want)
		return
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("pull %s from %s: %v", ref, addr, err)
	}
}

// pushChunked pushes img to repo:tag as a chunking client does: for each
// blob a POST, PATCHes of chunk bytes with their Content-Range, then a
// PUT with the digest; then the manifest. Request number i (from 0) goes
// to base(i), and after(i) runs once it is answered (nil: nothing). With
// keep-alive, HAProxy still sends each request to the next replica.
func pushChunked(t *testing.T, base func(i int) string, repo, tag string, img v1.Image, chunk int, after func(i int)) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	step := 0
	do := func(method, path string, body []byte, want int, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base(step)+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, req.URL, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d: %s", method, req.URL, resp.Status, want, msg)
		}
		if after != nil {
			after(step)
		}
		step++
		return resp
	}
	// next is the path of the session's Location, which any replica takes.
	next := func(resp *http.Response) string {
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || u.Path == "" {
			t.Fatalf("Location %q: %v", resp.Header.Get("Location"), err)
		}
		return u.RequestURI()
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{cfg}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	for _, b := range blobs {
		loc := next(do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, http.StatusAccepted))
		for off := 0; off < len(b); off += chunk {
			end := min(off+chunk, len(b))
			loc = next(do(http.MethodPatch, loc, b[off:end], http.StatusAccepted,
				"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", off, end-1)))
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		do(http.MethodPut, loc+sep+"digest="+digest.FromBytes(b).String(), nil, http.StatusCreated)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, raw, http.StatusCreated, "Content-Type", string(mt))
}

// TestClusterReplicaKilledMidPull: kill -9 one replica (the owner of a
// layer being filled) in the middle of 16 concurrent cold pulls through
// HAProxy: clients that retry a failed part, as docker and containerd
// do, all finish with the right bytes; the upstream sends at most 2 × the
// image; the killed replica, restarted with an empty data directory,
// serves the whole image with no blob byte from the upstream.
func TestClusterReplicaKilledMidPull(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	img := bigImage(t, 4, 16<<20)
	want := upstreamtest.Push(t, c.Reg, "team/crash:v1", img).Digest.String()
	size := imageBytes(t, img)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	victim := c.owner(t, m.Layers[1].Digest.String())
	// Paced, a layer takes 2 s to come from the upstream: the kill lands
	// in the middle of one, with clients reading it from every replica.
	c.Up.SetFault(func(r *http.Request) upstreamtest.Fault {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			return upstreamtest.Fault{BytesPerSec: 8 << 20}
		}
		return upstreamtest.Fault{}
	})
	c.Up.ResetCounts()

	const clients, tries = 16, 5
	ctx := proofContext(t, 2*time.Minute)
	results := make([]pulled, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { results[i], errs[i] = pullVerified(ctx, c.LB.Addr, "team/crash:v1", tries) })
	}
	// Kill once the upstream has sent the config, layer 0 and half of
	// layer 1 (the clients read the layers in order).
	mid := m.Config.Size + m.Layers[0].Size + m.Layers[1].Size/2
	for c.Up.BlobBytes() < mid {
		if ctx.Err() != nil {
			wg.Wait()
			t.Fatalf("the upstream sent %d bytes by the deadline, never %d", c.Up.BlobBytes(), mid)
		}
		time.Sleep(5 * time.Millisecond) // polling Faulty's counter: the kill's moment is a byte count
	}
	victim.kill()
	killedAt := c.Up.BlobBytes()
	wg.Wait()
	retried := 0
	for i, err := range errs {
		retried += results[i].Retries
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		} else if got := results[i].Manifest.String(); got != want {
			t.Errorf("client %d pulled %s, want %s", i, got, want)
		}
	}
	sent := c.Up.BlobBytes()
	t.Logf("killed %s (owner of layer 1) after %d upstream bytes; %d parts retried by the clients; the upstream sent %d bytes, %.3f × the image",
		victim.Name, killedAt, retried, sent, float64(sent)/float64(size))
	if sent > 2*size {
		t.Errorf("the upstream sent %d bytes, %.2f × the image; want ≤ 2", sent, float64(sent)/float64(size))
	}
	if retried == 0 {
		t.Error("no client had to retry: the kill landed where nobody was reading, and proved nothing")
	}

	c.Up.SetFault(nil)
	victim.restart(t, true)
	c.waitMembers(t)
	c.Up.ResetCounts()
	p, err := pullVerified(ctx, victim.Addr, "team/crash:v1", 1)
	if err != nil || p.Manifest.String() != want {
		t.Fatalf("the restarted %s: %v, %v; want %s", victim.Name, p.Manifest, err, want)
	}
	if n := c.Up.BlobBytes(); n != 0 {
		t.Errorf("the restarted %s, its data directory empty, had %d blob bytes from the upstream; want 0 (the cluster holds them)", victim.Name, n)
	}
}

// TestClusterS3StoppedForTenSeconds: the S3 store is stopped for 10 s
// while clients pull through HAProxy. Hits from the replicas' local
// tiers keep being served; misses get a clean 5xx v2 error; nothing
// half-written becomes visible in the bucket; after the store returns
// the missed image pulls, and wharf verify of every replica (its local
// tier and the bucket) is clean.
func TestClusterS3StoppedForTenSeconds(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	hot := upstreamtest.RandomImage(t, 3, 1<<20, upstreamtest.OCIManifest)
	cold := upstreamtest.RandomImage(t, 2, 4<<20, upstreamtest.OCIManifest)
	hotD := upstreamtest.Push(t, c.Reg, "team/hot:v1", hot).Digest.String()
	coldD := upstreamtest.Push(t, c.Reg, "team/cold:v1", cold).Digest.String()
	ctx := proofContext(t, 2*time.Minute)
	for _, r := range c.Replicas {
		if _, err := pullVerified(ctx, r.Addr, "team/hot:v1", 1); err != nil {
			t.Fatalf("warming %s: %v", r.Name, err)
		}
	}
	for _, r := range c.Replicas {
		waitLocalCopies(t, r, hot)
	}
	coldLayers, err := cold.Manifest()
	if err != nil {
		t.Fatal(err)
	}

	// For 10 s, one client pulls the warm image over and over and another
	// asks for the cold one's manifest and layers; the store comes back
	// once both are done.
	c.S3.Down()
	down := time.Now()
	outage, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var hits, misses int
	var slowestHit, slowestMiss time.Duration
	var hitErr, missErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; outage.Err() == nil && i < 1000; i++ {
			start := time.Now()
			p, err := pullVerified(ctx, c.LB.Addr, "team/hot:v1", 1)
			if err == nil && p.Manifest.String() != hotD {
				err = fmt.Errorf("pulled %s, want %s", p.Manifest, hotD)
			}
			if err != nil {
				hitErr = fmt.Errorf("a hit %s after the store stopped: %w", time.Since(down).Round(time.Millisecond), err)
				return
			}
			hits++
			slowestHit = max(slowestHit, time.Since(start))
		}
	})
	wg.Go(func() {
		lb := "http://" + c.LB.Addr + "/v2/team/cold/"
		for i := 0; outage.Err() == nil && i < 1000; i++ {
			for _, url := range []string{lb + "manifests/v1", lb + "blobs/" + coldLayers.Layers[i%2].Digest.String()} {
				start := time.Now()
				if missErr = missDuringOutage(ctx, url); missErr != nil {
					return
				}
				misses++
				slowestMiss = max(slowestMiss, time.Since(start))
			}
		}
	})
	wg.Wait()
	c.S3.Up(t)
	t.Logf("the store down for %s: %d pulls of the warm image served (the slowest in %s); %d misses answered 5xx with a v2 error (the slowest in %s)",
		time.Since(down).Round(time.Millisecond), hits, slowestHit.Round(time.Millisecond), misses, slowestMiss.Round(time.Millisecond))
	if hitErr != nil || missErr != nil {
		t.Fatal(errors.Join(hitErr, missErr))
	}
	// Hits must have gone on, promptly: each waiting out the store's
	// timeout would be no hit from the local tier.
	if hits < 5 || misses < 1 || slowestHit > 5*time.Second {
		t.Fatalf("during the outage: %d hits (the slowest %s), %d misses; want 5 hits or more, each within 5 s, and misses answered",
			hits, slowestHit, misses)
	}

	checkBucketContent(t, c)
	// A replica takes the store for down 5 s after it last failed
	// (cache's storeDownFor): a client retrying every 250 ms pulls the
	// missed image within that and 5 s more.
	back := time.Now()
	for {
		p, err := pullVerified(ctx, c.LB.Addr, "team/cold:v1", 1)
		if err == nil && p.Manifest.String() == coldD {
			t.Logf("the missed image pulled %s after the store came back", time.Since(back).Round(time.Millisecond))
			break
		}
		if time.Since(back) > 10*time.Second {
			t.Fatalf("the missed image 10 s after the store came back: %v, %v; want %s", p.Manifest, err, coldD)
		}
		time.Sleep(250 * time.Millisecond) // the client's retry pace
	}
	for _, r := range c.Replicas {
		r.stop(t)
		out, err := exec.Command(r.bin, "verify", "--config", r.Conf).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(" 0 corrupt")) {
			t.Errorf("wharf verify of %s: %v\n%s", r.Name, err, out)
		}
	}
}

// missDuringOutage GETs url, a manifest or a blob none of the replicas
// holds, while the store is down, and wants a 5xx with a v2 error body
// (JSON errors, each with a code): what was fetched could not be kept,
// so a replica refuses the miss rather than fetch it for nothing.
func missDuringOutage(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", string(upstreamtest.OCIManifest))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s with the store down: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var v2 struct {
		Errors []struct{ Code, Message string }
	}
	if resp.StatusCode < 500 || json.Unmarshal(body, &v2) != nil || len(v2.Errors) == 0 || v2.Errors[0].Code == "" {
		return fmt.Errorf("GET %s with the store down: %s, %.200q; want a 5xx with a v2 error body", url, resp.Status, body)
	}
	return nil
}

// waitLocalCopies waits (10 s at most) until r's data directory holds a
// copy of img's config and layers: the tier copies what it reads from
// the bucket in the background.
func waitLocalCopies(t *testing.T, r *clusterReplica, img v1.Image) {
	t.Helper()
	// The config and layers: a replica that had the manifest from its
	// owner keeps no copy in its data directory (seen with the peer
	// origins of docs/cluster.md step 5), and serves it from memory.
	want := contentOf(t, img)[1:]
	deadline := time.Now().Add(10 * time.Second)
	for {
		var missing []string
		for _, d := range want {
			if _, err := os.Stat(filepath.Join(r.Dir, "blobs", "sha256", d.Hex[:2], d.Hex)); err != nil {
				missing = append(missing, d.String())
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's data directory lacks %d of the %d blobs of the image it served after 10s: %s (want %s)", r.Name, len(missing), len(want), missing, want)
		}
		time.Sleep(20 * time.Millisecond) // polling the directory: the copy sends no event
	}
}

// contentOf is img's manifest, config and layers, by digest.
func contentOf(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{d, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// checkBucketContent reads every content object in the bucket and
// checks it hashes to the digest its key names: nothing half-written.
func checkBucketContent(t *testing.T, c *wharfCluster) {
	t.Helper()
	keys := c.S3.Keys(t, c.Bucket, "mirror/blobs/")
	for _, k := range keys {
		hexd := path.Base(k)
		o := c.S3.Object(t, c.Bucket, k)
		h := sha256.New()
		_, err := io.Copy(h, o)
		o.Close()
		if err != nil {
			t.Errorf("read %s: %v", k, err)
		} else if got := fmt.Sprintf("%x", h.Sum(nil)); got != hexd {
			t.Errorf("the bucket holds %s, whose bytes hash to %s: half-written content is visible", k, got)
		}
	}
	if len(keys) == 0 {
		t.Error("the bucket holds no content at all under mirror/blobs/")
	}
}

// TestClusterRetagSeenWithinTTL: the upstream retags an image; every
// replica serves the new digest within the TTL plus a few seconds, and
// the upstream sees at most one revalidation per TTL for the whole
// cluster, while clients keep asking every replica.
func TestClusterRetagSeenWithinTTL(t *testing.T) {
	const ttl = 2 * time.Second
	c := startCluster(t, clusterOpts{tagTTL: ttl})
	a := upstreamtest.Push(t, c.Reg, "team/app:stable", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)).Digest.String()
	ctx := proofContext(t, time.Minute)
	for _, r := range c.Replicas {
		if d := tagDigest(ctx, t, r.Addr, "team/app:stable"); d != a {
			t.Fatalf("%s serves %s, want %s", r.Name, d, a)
		}
	}
	b := upstreamtest.Push(t, c.Reg, "team/app:stable", upstreamtest.RandomImage(t, 1, 1024, upstreamtest.OCIManifest)).Digest.String()
	c.Up.ResetCounts()
	retagged := time.Now()

	// Every replica is asked every 50 ms until each serves b, then for
	// three TTLs more.
	seen := map[string]time.Duration{}
	deadline := retagged.Add(ttl + 5*time.Second)
	for time.Now().Before(deadline) {
		for _, r := range c.Replicas {
			if _, ok := seen[r.Name]; ok {
				continue
			}
			if d := tagDigest(ctx, t, r.Addr, "team/app:stable"); d == b {
				seen[r.Name] = time.Since(retagged)
			} else if d != a {
				t.Fatalf("%s serves %s, neither %s nor %s", r.Name, d, a, b)
			}
		}
		if len(seen) == len(c.Replicas) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the clients' pace, not a wait for an event
	}
	if len(seen) != len(c.Replicas) {
		t.Fatalf("after the TTL (%s) and 5 s, only %v serve the new digest", ttl, seen)
	}
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); {
		for _, r := range c.Replicas {
			if d := tagDigest(ctx, t, r.Addr, "team/app:stable"); d != b {
				t.Fatalf("%s went back to %s", r.Name, d)
			}
		}
		time.Sleep(50 * time.Millisecond) // the clients' pace
	}
	elapsed := time.Since(retagged)
	windows := int(elapsed/ttl) + 1
	heads, gets := c.Up.Count(http.MethodHead, "/manifests/stable"), c.Up.Count(http.MethodGet, "/manifests/stable")
	t.Logf("new digest seen after %v (TTL %s); over %s the upstream had %d HEAD and %d GET of the tag (%d TTL windows)",
		seen, ttl, elapsed.Round(time.Millisecond), heads, gets, windows)
	if heads > windows || gets > 1 {
		t.Errorf("the upstream had %d HEAD and %d GET of the tag in %s: want at most one revalidation per TTL (%d) and one GET, for the cluster",
			heads, gets, elapsed.Round(time.Millisecond), windows)
	}
}

// tagDigest asks the replica at addr for ref's manifest digest, as a
// client's pull starts.
func tagDigest(ctx context.Context, t *testing.T, addr, ref string) string {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	d, err := remote.Get(mustRef(t, addr+"/"+ref), remote.WithTransport(tr), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("get %s from %s: %v", ref, addr, err)
	}
	return d.Digest.String()
}
