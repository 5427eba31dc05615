package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

const testClusterSecret = "serve-test-cluster-secret-0123"

// TestServeAsClusterReplicas runs two `wharf serve` replicas on one
// bucket as a cluster: an image pulled through both at once is fetched
// from the upstream once per blob, the peer listener answers only to the
// secret, and the client listener serves nothing under /cluster/.
func TestServeAsClusterReplicas(t *testing.T) {
	srv := s3srv.Get(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	up := upstreamtest.NewFaulty(t, reg.URL)
	img := upstreamtest.RandomImage(t, 3, 256<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	want := contentDigests(t, img)
	conf := s3ConfigFile(t, srv.Endpoint, bucket, "cluster", srv.User, srv.Key)

	peers := []string{freePort(t), freePort(t)}
	addrs := make([]string, 2)
	for i := range peers {
		logs := newLogSink()
		addr, stop := serveLogged(t, logs, "--config", conf, "--upstream", up.URL,
			"--cluster-listen", peers[i], "--cluster-self", peers[i], "--cluster-peers", strings.Join(peers, ","),
			"--cluster-secret", testClusterSecret)
		t.Cleanup(stop)
		addrs[i] = addr
		if strings.Contains(logs.text(), testClusterSecret) {
			t.Errorf("replica %d logs the cluster secret", i)
		}
	}

	status := func(url, secret string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	q := "?upstream=" + strings.TrimPrefix(up.URL, "http://") + "&repo=team/app"
	for _, path := range []string{"/cluster/health", "/cluster/v1/blobs/" + want[1].String() + q, "/cluster/v1/manifests/v1" + q} {
		if got := status("http://"+addrs[0]+path, testClusterSecret); got != http.StatusNotFound {
			t.Errorf("client listener %s: %d, want 404", path, got)
		}
	}
	if got := status("http://"+peers[0]+"/cluster/health", testClusterSecret); got != http.StatusOK {
		t.Errorf("peer listener health with the secret: %d", got)
	}
	if got := status("http://"+peers[0]+"/cluster/health", ""); got != http.StatusUnauthorized {
		t.Errorf("peer listener health without the secret: %d", got)
	}

	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			if d := pullThrough(t, a, "team/app:v1"); d != want[0] {
				t.Errorf("pulled %s through %s, want %s", d, a, want[0])
			}
		})
	}
	wg.Wait()
	for _, d := range want[1:] {
		if n := up.Count(http.MethodGet, "/blobs/"+d.String()); n != 1 {
			t.Errorf("blob %s fetched from the upstream %d times by the cluster, want 1", d, n)
		}
	}
	// The replicas asked each other: the metric only peer.Origin counts.
	asked := false
	for _, a := range addrs {
		resp, err := http.Get("http://" + a + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		asked = asked || strings.Contains(string(body), `wharf_peer_requests_total{result="ok"}`)
		waitFillsStored(t, a)
	}
	if !asked {
		t.Error("no replica asked a peer")
	}
	// Each replica reports its reads to the leader of eviction under its
	// --cluster-self name, every 10 s.
	reported := func() bool {
		keys := strings.Join(srv.Keys(t, bucket, ""), "\n")
		return strings.Contains(keys, "records/access/"+peers[0]) && strings.Contains(keys, "records/access/"+peers[1])
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.After(25 * time.Second); !reported(); {
		select {
		case <-deadline:
			t.Fatalf("no access report of each replica in the bucket:\n%s", strings.Join(srv.Keys(t, bucket, ""), "\n"))
		case <-tick.C:
		}
	}
}
