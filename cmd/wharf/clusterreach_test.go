package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestClusterCatalogAndGC runs two `wharf serve` replicas on one bucket:
// a repository mirrored through B is in A's /v2/_catalog; wharf gc on the
// bucket refuses while a replica holds the cluster's eviction lease (a
// dry run does not need it), and once the replicas are stopped removes
// what no replica's tag reaches and keeps what B's mirrored tag reaches.
func TestClusterCatalogAndGC(t *testing.T) {
	srv := s3srv.Get(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 2, 64<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	loose := upstreamtest.RandomImage(t, 1, 8<<10, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/loose:v1", loose)
	looseLayer := contentDigests(t, loose)[2]
	conf := s3ConfigFile(t, srv.Endpoint, bucket, "cluster", srv.User, srv.Key)

	peers := []string{freePort(t), freePort(t)}
	addrs := make([]string, 2)
	stops := make([]func(), 2)
	for i := range peers {
		addrs[i], stops[i] = serveLogged(t, newLogSink(), "--config", conf, "--upstream", reg.URL,
			"--cluster-listen", peers[i], "--cluster-self", peers[i], "--cluster-peers", strings.Join(peers, ","),
			"--cluster-secret", testClusterSecret)
	}
	a, b := addrs[0], addrs[1]
	pullThrough(t, b, "team/app:v1")
	// A layer fetched by digest alone, through A: no tag reaches it.
	resp, err := http.Get("http://" + a + "/v2/team/loose/blobs/" + looseLayer.String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("blob by digest through a: %d", resp.StatusCode)
	}
	for _, addr := range addrs {
		waitFillsStored(t, addr)
	}

	// B's record of the repository is written in the background.
	for deadline := time.Now().Add(10 * time.Second); !slices.Contains(catalog(t, a), "team/app"); {
		if time.Now().After(deadline) {
			t.Fatalf("a's catalog %v never listed team/app, mirrored through b", catalog(t, a))
		}
		time.Sleep(20 * time.Millisecond)
	}

	gcArgs := []string{"gc", "--config", conf, "--data", t.TempDir(), "--upstream", reg.URL}
	out, err := runCmd(t, append(gcArgs, "--wait", "200ms")...)
	if err == nil || !strings.Contains(err.Error(), "eviction lease is held by 127.0.0.1:") {
		t.Fatalf("gc while a replica leads eviction: %v\n%s", err, out)
	}
	if out, err := runCmd(t, append(gcArgs, "--dry-run")...); err != nil || !strings.Contains(out, "would remove 1 ") {
		t.Fatalf("gc --dry-run while the replicas serve: %v\n%s", err, out)
	}

	for _, stop := range stops {
		stop() // each gives the lease up as it stops
	}
	if out, err := runCmd(t, gcArgs...); err != nil || !strings.Contains(out, "removed 1 ") {
		t.Fatalf("gc with the replicas stopped: %v\n%s", err, out)
	}
	keys := srv.Keys(t, bucket, "cluster/blobs/")
	if slices.Contains(keys, s3Key("cluster", looseLayer)) {
		t.Error("gc kept the layer no tag reaches")
	}
	for _, d := range contentDigests(t, img) {
		if !slices.Contains(keys, s3Key("cluster", d)) {
			t.Errorf("gc removed %s, which b's mirrored tag reaches", d)
		}
	}
}

// catalog is the repositories addr's /v2/_catalog lists.
func catalog(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Repositories
}
