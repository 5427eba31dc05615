package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestChunkedPushAcrossReplicas: two serves on one bucket, as replicas
// behind a load balancer without stickiness. A chunked blob upload whose
// requests alternate between them — POST on one, PATCHes on each in
// turn, a status, a PUT on the other — completes; the blob is in the
// bucket and served by the replica that finished it, and the session
// leaves nothing behind.
func TestChunkedPushAcrossReplicas(t *testing.T) {
	srv := s3srv.Get(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	conf := s3ConfigFile(t, srv.Endpoint, bucket, "mirror", srv.User, srv.Key)
	var addrs []string
	for i := 0; i < 2; i++ {
		addr, _ := serveArgs(t, "--upstream", reg.URL, "--anonymous-push=true", "--config", conf, "--data", t.TempDir())
		addrs = append(addrs, addr)
	}
	body := make([]byte, 3<<20+12345)
	rand.Read(body)
	d := digest.FromBytes(body)
	const repoName = "team/pushed"

	n := 0
	next := func() string { n++; return addrs[n%2] } // round robin
	do := func(method, location string, h http.Header, b []byte, want int) *http.Response {
		t.Helper()
		u, err := url.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		u.Scheme, u.Host = "http", next()
		req, err := http.NewRequest(method, u.String(), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s on %s: %s %s, want %d", method, u.Path, u.Host, resp.Status, msg, want)
		}
		return resp
	}

	loc := do(http.MethodPost, "/v2/"+repoName+"/blobs/uploads/", nil, nil, http.StatusAccepted).Header.Get("Location")
	parts := [][2]int{{0, 1 << 20}, {1 << 20, 2 << 20}, {2 << 20, 3 << 20}}
	for _, p := range parts {
		h := http.Header{"Content-Type": {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", p[0], p[1]-1)}}
		resp := do(http.MethodPatch, loc, h, body[p[0]:p[1]], http.StatusAccepted)
		if got := resp.Header.Get("Range"); got != fmt.Sprintf("0-%d", p[1]-1) {
			t.Fatalf("after bytes %d-%d: Range %q", p[0], p[1]-1, got)
		}
		loc = resp.Header.Get("Location")
	}
	// A chunk the other replica already took, sent again: the Range
	// that counts, from either replica.
	resp := do(http.MethodPatch, loc, http.Header{"Content-Range": {fmt.Sprintf("%d-%d", 0, 9)}}, body[:10], http.StatusRequestedRangeNotSatisfiable)
	if got := resp.Header.Get("Range"); got != fmt.Sprintf("0-%d", 3<<20-1) {
		t.Errorf("a chunk at a wrong offset: Range %q, want the bytes taken", got)
	}
	do(http.MethodGet, loc, nil, nil, http.StatusNoContent)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	finisher := addrs[(n+1)%2]
	do(http.MethodPut, loc+sep+"digest="+d.String(), http.Header{"Content-Type": {"application/octet-stream"}}, body[3<<20:], http.StatusCreated)

	resp, err := http.Get("http://" + finisher + "/v2/" + repoName + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET the pushed blob from the replica that finished it: %s, %d bytes; want the %d pushed", resp.Status, len(got), len(body))
	}
	keys := srv.Keys(t, bucket, "mirror/")
	if !slices.Contains(keys, "mirror/blobs/sha256/"+d.Encoded()[:2]+"/"+d.Encoded()) {
		t.Errorf("the pushed blob is not in the bucket: %q", keys)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "mirror/uploads/") || strings.HasPrefix(k, "mirror/records/uploads/") {
			t.Errorf("%s left behind by the finished session", k)
		}
	}

	// A real client's upload (go-containerregistry: POST, PATCH, PUT),
	// each request to the next replica.
	l, err := random.Layer(2<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewRepository(addrs[0]+"/team/layer", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	rr := &roundRobin{addrs: addrs}
	if err := remote.WriteLayer(ref, l, remote.WithTransport(rr)); err != nil {
		t.Fatalf("a layer pushed round-robin: %v", err)
	}
	ld, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(srv.Keys(t, bucket, "mirror/blobs/"), "mirror/blobs/sha256/"+ld.Hex[:2]+"/"+ld.Hex) {
		t.Errorf("the layer pushed round-robin is not in the bucket")
	}
	if rr.n.Load() < 3 {
		t.Errorf("the push made %d requests, want its POST, PATCH and PUT at least", rr.n.Load())
	}
}

// roundRobin sends each request to the next replica, as a load balancer
// without stickiness does.
type roundRobin struct {
	addrs []string
	n     atomic.Int64
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = r.addrs[r.n.Add(1)%int64(len(r.addrs))]
	req.Host = req.URL.Host
	return http.DefaultTransport.RoundTrip(req)
}
