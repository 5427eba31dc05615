package e2e

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestDigestAloneOpensNoRepository: content is stored once by digest, but a
// repository serves only what its upstream (or a push into it) vouched for.
// A private repository's layer cannot be read through another name.
func TestDigestAloneOpensNoRepository(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	private := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)
	pdesc := upstreamtest.Push(t, reg, "private/app:v1", private)
	upstreamtest.Push(t, reg, "public/app:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	pullDigest(t, m, "private/app:v1")
	layer := layerDigests(t, private)[0].String()
	waitFills(t, m)

	faulty.ResetCounts()
	for _, c := range []struct{ method, path, code string }{
		{"GET", "/v2/public/app/blobs/" + layer, "BLOB_UNKNOWN"},
		{"HEAD", "/v2/public/app/blobs/" + layer, ""},
		{"GET", "/v2/public/app/manifests/" + pdesc.Digest.String(), "MANIFEST_UNKNOWN"},
	} {
		resp := do(t, c.method, m.URL+c.path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: %d; a digest alone must not open another repository", c.method, c.path, resp.StatusCode)
		}
		if c.code != "" {
			if got := errorCode(t, resp); got != c.code {
				t.Errorf("%s %s: code %q, want %s", c.method, c.path, got, c.code)
			}
		}
	}
	if n := faulty.BlobGets(); n != 0 {
		t.Errorf("refusing made %d upstream blob GETs", n)
	}

	// Once the public repository really holds the layer upstream, it is
	// served from the cache (the upstream is asked with a HEAD only).
	upstreamtest.Push(t, reg, "public/app:shared", private)
	faulty.ResetCounts()
	resp := get(t, m.URL+"/v2/public/app/blobs/"+layer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a layer the public repository holds upstream: %d", resp.StatusCode)
	}
	if n := faulty.BlobGets(); n != 0 {
		t.Errorf("served a cached layer with %d upstream blob GETs, want 0 (a HEAD vouches)", n)
	}
}

// TestPushedBlobStaysInItsRepository: a blob pushed to one repository is
// not readable through another unless mounted from it.
func TestPushedBlobStaysInItsRepository(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	m := startPusher(t, reg.URL, pushOpts{}).URL
	blob := make([]byte, 2048)
	rand.Read(blob)
	d := digest.FromBytes(blob)

	req, _ := http.NewRequest(http.MethodPost, m+"/v2/site/a/blobs/uploads/?digest="+d.String(), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic push: %d", resp.StatusCode)
	}
	if resp := get(t, m+"/v2/site/a/blobs/"+d.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("pushed blob in its own repository: %d", resp.StatusCode)
	}
	if resp := get(t, m+"/v2/site/b/blobs/"+d.String()); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("pushed blob through another repository: %d, want 404", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, m+"/v2/site/c/blobs/uploads/?mount="+d.String()+"&from=site/a", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("mount from the repository that holds it: %d, want 201", resp.StatusCode)
	}
	if resp := get(t, m+"/v2/site/c/blobs/"+d.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("mounted blob: %d", resp.StatusCode)
	}
}
