package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The cluster's scenarios (issue 13), as named in samples and the report.
// The cold one is coldN(n) with the target "cluster", beside wharf and
// distribution.
const (
	scClusterWarm = "cluster-warm" // n clients pulling the cached image: cluster, one replica, single node
	scPeerHop     = "peer-hop"     // small blobs: a hit on the owner, the same via another replica
	peerRepo      = "bench/small"
	peerBlobSize  = 4 << 10
)

// Targets of the peer-hop scenario.
const (
	hopLocal = "local-hit"  // GET /v2/… on the owner, which holds the blob
	hopVia   = "via-peer"   // GET /v2/… on a replica that does not: it asks the owner
	hopRoute = "peer-route" // GET /cluster/v1/blobs/… on the owner's peer listener: the hop alone
	hopAgain = "again-on-b" // the via-peer GET repeated at once: B has linked it, no hop
)

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

// seedPeerBlobs pushes PeerBlobs small random blobs per round to the
// upstream (directly, not through the relay), each to be fetched once by
// its owner and then asked of another replica.
func (h *harness) seedPeerBlobs(ctx context.Context) error {
	repo, err := name.NewRepository(strings.TrimPrefix(h.upstream.url, "http://")+"/"+peerRepo, name.Insecure)
	if err != nil {
		return err
	}
	n := h.p.PeerBlobs * h.p.Rounds
	h.img.peerBlobs = make([]string, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				b := make([]byte, peerBlobSize)
				rng := rand.NewChaCha8([32]byte{'p', 'e', 'e', 'r', byte(i), byte(i >> 8), byte(i >> 16)})
				rng.Read(b)
				l := static.NewLayer(b, types.OCIUncompressedLayer)
				err := remote.WriteLayer(repo, l, remote.WithContext(ctx))
				d, _ := l.Digest()
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("push small blob %d: %w", i, err)
				}
				h.img.peerBlobs[i] = d.String()
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
// round's small blobs, fetched first by its owner A: the GET on A (a
// local hit), the same GET on B, the replica ranked second (which holds
// no link of the repository to it, so it asks A before serving, as a
// replica does for content it has not served), and the bare peer request
// on A's peer listener. One request at a time on kept-alive connections;
// the order of the three turns rotates. The replicas' own count of
// requests to a peer that succeeded must rise by one per blob: the
// report gives the fraction seen.
func (h *harness) peerHop(ctx context.Context, round int, c *wharfCluster) error {
	blobs := h.img.peerBlobs[(round-1)*h.p.PeerBlobs : round*h.p.PeerBlobs]
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	index := map[string]int{}
	for i, p := range c.peers {
		index[p] = i
	}
	path := func(d string) string { return "/v2/" + peerRepo + "/blobs/" + d }
	// The owners fill first, so that no fill's work in the background
	// overlaps the timed requests.
	for _, d := range blobs {
		a := c.replicas[index[rankPeers(c.peers, d)[0]]]
		if _, err := timedGet(ctx, client, a.url+path(d), ""); err != nil {
			return fmt.Errorf("filling %s on its owner: %w", d, err)
		}
	}
	before, err := c.scrapeAll(ctx)
	if err != nil {
		return err
	}
	upstream := strings.TrimPrefix(h.relay.url, "http://")
	ms := map[string][]float64{}
	for i, d := range blobs {
		rank := rankPeers(c.peers, d)
		a, b := c.replicas[index[rank[0]]], c.replicas[index[rank[1]]]
		turns := []struct {
			kind, url, bearer string
		}{
			{hopLocal, a.url + path(d), ""},
			{hopVia, b.url + path(d), ""},
			{hopRoute, "http://" + rank[0] + "/cluster/v1/blobs/" + d + "?upstream=" + upstream + "&repo=" + peerRepo, c.secret},
		}
		for k := range turns {
			t := turns[(i+k)%len(turns)]
			took, err := timedGet(ctx, client, t.url, t.bearer)
			if err != nil {
				return fmt.Errorf("%s: %w", t.kind, err)
			}
			ms[t.kind] = append(ms[t.kind], took.Seconds()*1000)
		}
		// The same GET on B once more: what B's path costs without the
		// hop (bytes from its local copy, or from the bucket while the
		// copy lands).
		took, err := timedGet(ctx, client, b.url+path(d), "")
		if err != nil {
			return fmt.Errorf("%s: %w", hopAgain, err)
		}
		ms[hopAgain] = append(ms[hopAgain], took.Seconds()*1000)
	}
	after, err := c.scrapeAll(ctx)
	if err != nil {
		return err
	}
	n := float64(len(blobs))
	// What the replicas asked of the bucket during the timed requests:
	// B's path reads the bucket, the hits on A should not.
	for _, op := range s3Ops {
		label := `op="` + op + `"`
		h.add(scPeerHop, hopVia, round, "s3_"+op+"_per_blob",
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

// timedGet GETs url, reads the body to its end, and returns how long it
// all took; anything but a whole 200 of peerBlobSize bytes is an error.
func timedGet(ctx context.Context, client *http.Client, url, bearer string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
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
	if resp.StatusCode != http.StatusOK || n != peerBlobSize {
		return 0, fmt.Errorf("GET %s: %s, %d bytes", url, resp.Status, n)
	}
	return took, nil
}

// startClusterWarm starts MinIO, seeds the small blobs and starts the
// warm cluster.
func (h *harness) startClusterWarm(ctx context.Context) (*wharfCluster, error) {
	if err := h.startS3(ctx); err != nil {
		return nil, err
	}
	if err := h.seedPeerBlobs(ctx); err != nil {
		return nil, err
	}
	return h.startWarmCluster(ctx)
}
