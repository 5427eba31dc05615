package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The cluster's scenarios (issue 13), as named in samples and the report.
// The cold one is coldN(n) with the target "cluster", beside wharf and
// distribution.
const (
	scClusterWarm = "cluster-warm" // n clients pulling the cached image: cluster, one replica, single node
	scPeerHop     = "peer-hop"     // manifests by tag: a hit on the owner, the same via another replica
	peerRepo      = "bench/hop"
)

// Targets of the peer-hop scenario.
const (
	hopLocal = "local-hit"  // GET /v2/…/manifests/<tag> on the tag's owner, which holds it
	hopVia   = "via-peer"   // the same GET on a replica that has never seen the tag: it asks the owner
	hopRoute = "peer-route" // GET /cluster/v1/manifests/<tag> on the owner's peer listener: the hop alone
	hopAgain = "again-on-b" // the via-peer GET repeated at once: B holds the tag now, no hop
)

// manifestAccept is what the docker daemon sends for a manifest.
var manifestAccept = []string{string(types.OCIManifestSchema1), string(types.DockerManifestSchema2), string(types.OCIImageIndex), string(types.DockerManifestList)}

// tagKey is the key package peer ranks a tag by.
func tagKey(upstream, repo, tag string) string { return "tag\x00" + upstream + "/" + repo + ":" + tag }

// rankPeers orders the replicas' peer addresses for key, owner first, as
// package cluster ranks them (rendezvous hashing: the first 8 bytes of
// sha256(address, NUL, key), big-endian, highest first, ties to the
// smaller address). The harness cannot import cluster (depcheck_test.go);
// TestRankPeersMatchesCluster checks this copy against it, and the
// scenario checks the replicas' own count of peer requests.
func rankPeers(peers []string, key string) []string {
	w := func(p string) uint64 {
		sum := sha256.Sum256([]byte(p + "\x00" + key))
		return binary.BigEndian.Uint64(sum[:8])
	}
	out := slices.Clone(peers)
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(w(b), w(a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}

// seedPeerTags pushes one small image to the upstream (directly, not
// through the relay) under PeerTags tags per round: each tag is fetched
// once by its owner, then asked of another replica, which has never seen
// it.
func (h *harness) seedPeerTags(ctx context.Context) error {
	host := strings.TrimPrefix(h.upstream.url, "http://")
	img, err := seededImage(4, 1, 4<<10, "amd64")
	if err != nil {
		return err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	h.img.peerManifest = int64(len(raw))
	n := h.p.PeerTags * h.p.Rounds
	h.img.peerTags = make([]string, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				tag := fmt.Sprintf("h%d", i)
				ref, err := name.NewTag(host+"/"+peerRepo+":"+tag, name.Insecure)
				if err == nil {
					err = remote.Write(ref, img, remote.WithContext(ctx))
				}
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("push %s:%s: %w", peerRepo, tag, err)
				}
				h.img.peerTags[i] = tag
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// startWarmCluster starts the long-lived cluster of the warm scenarios
// and fills every replica's local tier with the image over the unpaced
// link: twice straight to each replica (the first pull of a replica that
// is not a blob's owner reads the bucket while its local copy lands),
// then once through HAProxy.
func (h *harness) startWarmCluster(ctx context.Context) (*wharfCluster, error) {
	c, err := h.startCluster(ctx, "cluster-warm")
	if err != nil {
		return nil, err
	}
	if err := h.setRate(ctx, 0); err != nil {
		return nil, err
	}
	targets := []string{}
	for _, r := range c.replicas {
		targets = append(targets, r.url, r.url)
	}
	for _, url := range append(targets, c.lb.url) {
		if _, err := h.load(ctx, url, "--pulls", "1", h.img.app); err != nil {
			return nil, fmt.Errorf("warming the cluster: %w", err)
		}
	}
	if err := h.setRate(ctx, h.p.Rate); err != nil {
		return nil, err
	}
	h.logf("warm cluster ready")
	return c, nil
}

// clusterWarm pulls the cached image with the cold scenarios' largest
// number of clients from the cluster through HAProxy, from one replica of
// the same cluster alone, and from the single node, in rotating order.
func (h *harness) clusterWarm(ctx context.Context, round int, c *wharfCluster, single *server) error {
	n := strconv.Itoa(slices.Max(h.p.Concurrent))
	for _, t := range rotate([]*server{c.lb, c.replicas[0], single}, round) {
		r, err := h.load(ctx, t.url, "--clients", n, "--pulls", n, h.img.app)
		if err != nil {
			return err
		}
		h.add(scClusterWarm, t.kind, round, "seconds", r.Seconds)
		h.add(scClusterWarm, t.kind, round, "bytes_per_s", r.BytesPerSecond)
		h.add(scClusterWarm, t.kind, round, "client_cpu", r.cpu.Seconds())
		h.logf("  %-13s %-12s %6.2fs  %s/s  client CPU %.1fs", scClusterWarm, t.kind, r.Seconds, size(int64(r.BytesPerSecond)), r.cpu.Seconds())
	}
	return nil
}

// peerHop measures what a peer hop adds to a hit. For each of this
// round's tags, fetched first by its owner A (rendezvous ranking of the
// tag's key): the GET of the manifest by tag on A (a hit: its record is
// fresh for the tag TTL, 1h), the same GET on B, the replica ranked
// second, which has never seen the tag and so asks A (package peer), and
// the bare peer request on A's peer listener; then B's GET once more (a
// hit on B now). One request at a time on kept-alive connections; the
// order of the first three turns rotates. The replicas' own count of
// requests to a peer that succeeded must rise by one per tag: the report
// gives the count seen.
func (h *harness) peerHop(ctx context.Context, round int, c *wharfCluster) error {
	tags := h.img.peerTags[(round-1)*h.p.PeerTags : round*h.p.PeerTags]
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	index := map[string]int{}
	for i, p := range c.peers {
		index[p] = i
	}
	upstream := strings.TrimPrefix(h.relay.url, "http://")
	rank := func(tag string) []string { return rankPeers(c.peers, tagKey(upstream, peerRepo, tag)) }
	path := func(tag string) string { return "/v2/" + peerRepo + "/manifests/" + tag }
	get := func(url, bearer string) (time.Duration, error) {
		return timedGet(ctx, client, url, bearer, h.img.peerManifest)
	}
	// The owners fetch first, so that no fetch's work in the background
	// overlaps the timed requests.
	for _, tag := range tags {
		a := c.replicas[index[rank(tag)[0]]]
		if _, err := get(a.url+path(tag), ""); err != nil {
			return fmt.Errorf("fetching %s on its owner: %w", tag, err)
		}
	}
	before, err := c.scrapeAll(ctx)
	if err != nil {
		return err
	}
	ms := map[string][]float64{}
	for i, tag := range tags {
		r := rank(tag)
		a, b := c.replicas[index[r[0]]], c.replicas[index[r[1]]]
		turns := []struct {
			kind, url, bearer string
		}{
			{hopLocal, a.url + path(tag), ""},
			{hopVia, b.url + path(tag), ""},
			{hopRoute, "http://" + r[0] + "/cluster/v1/manifests/" + tag + "?upstream=" + upstream + "&repo=" + peerRepo, c.secret},
		}
		for k := range turns {
			t := turns[(i+k)%len(turns)]
			took, err := get(t.url, t.bearer)
			if err != nil {
				return fmt.Errorf("%s: %w", t.kind, err)
			}
			ms[t.kind] = append(ms[t.kind], took.Seconds()*1000)
		}
		took, err := get(b.url+path(tag), "")
		if err != nil {
			return fmt.Errorf("%s: %w", hopAgain, err)
		}
		ms[hopAgain] = append(ms[hopAgain], took.Seconds()*1000)
	}
	after, err := c.scrapeAll(ctx)
	if err != nil {
		return err
	}
	n := float64(len(tags))
	// What the replicas asked of the bucket during the timed requests.
	for _, op := range s3Ops {
		label := `op="` + op + `"`
		h.add(scPeerHop, hopVia, round, "s3_"+op+"_per_request",
			(after.sum("wharf_s3_requests_total", label)-before.sum("wharf_s3_requests_total", label))/n)
	}
	h.add(scPeerHop, hopVia, round, "s3_mean_ms", 1000*ratio(
		after.sum("wharf_s3_request_seconds_sum", "")-before.sum("wharf_s3_request_seconds_sum", ""),
		after.sum("wharf_s3_request_seconds_count", "")-before.sum("wharf_s3_request_seconds_count", "")))
	for _, kind := range []string{hopLocal, hopVia, hopRoute, hopAgain} {
		h.add(scPeerHop, kind, round, "p50_ms", percentile(ms[kind], 0.5))
		h.add(scPeerHop, kind, round, "p90_ms", percentile(ms[kind], 0.9))
	}
	ok := `result="ok"`
	seen := (after.sum("wharf_peer_requests_total", ok) - before.sum("wharf_peer_requests_total", ok)) / n
	h.add(scPeerHop, hopVia, round, "peer_ok_per_request", seen)
	h.logf("  %-9s p50 %.2f ms on the owner, %.2f ms via another replica (%.2f peer requests each), %.2f ms for the peer request alone, %.2f ms on the other replica again",
		scPeerHop, percentile(ms[hopLocal], 0.5), percentile(ms[hopVia], 0.5), seen, percentile(ms[hopRoute], 0.5), percentile(ms[hopAgain], 0.5))
	return nil
}

// s3Ops are the methods wharf_s3_requests_total counts by.
var s3Ops = []string{"GET", "HEAD", "PUT", "POST", "DELETE"}

// scrapeAll adds up the replicas' metrics.
func (c *wharfCluster) scrapeAll(ctx context.Context) (promText, error) {
	all := promText{}
	for _, r := range c.replicas {
		m, err := scrape(ctx, r.url+"/metrics")
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			all[k] += v
		}
	}
	return all, nil
}

// timedGet GETs url as the docker daemon asks for a manifest, reads the
// body to its end, and returns how long it all took; anything but a
// whole 200 of want bytes is an error.
func timedGet(ctx context.Context, client *http.Client, url, bearer string, want int64) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header["Accept"] = manifestAccept
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || n != want {
		return 0, fmt.Errorf("GET %s: %s, %d bytes", url, resp.Status, n)
	}
	return took, nil
}

// startClusterWarm starts MinIO, seeds the peer hop's tags and starts the
// warm cluster.
func (h *harness) startClusterWarm(ctx context.Context) (*wharfCluster, error) {
	if err := h.startS3(ctx); err != nil {
		return nil, err
	}
	if err := h.seedPeerTags(ctx); err != nil {
		return nil, err
	}
	return h.startWarmCluster(ctx)
}
