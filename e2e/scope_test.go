package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// A digest opens only what the repository already holds: alice pushes to
// docker.io/alice/secret; bob, who may write docker.io/bob only, knows her
// digests (from a log, a scan, a guess) and tries to reach her content
// through his own repositories.

// twoWriters is a wharf with access control in front of a registry, alice
// writing docker.io/alice and bob docker.io/bob, and alice's image pushed
// to alice/secret:v1 and her index to alice/secret:multi.
type twoWriters struct {
	m          *multiMirror
	alice, bob []remote.Option
	img        v1.Image
	idx        v1.ImageIndex
}

func startTwoWriters(t *testing.T) *twoWriters {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	tw := &twoWriters{m: startMulti(t, multiOpts{
		def: namedUpstream{name: "docker.io", url: reg.URL, officialLibrary: true},
		auth: &proxy.AuthOptions{Passwords: newUsers(t, "alice", "alice-pw", "bob", "bob-pw"), Rules: []proxy.Rule{
			{User: "alice", Prefix: "docker.io/alice", Write: true},
			{User: "bob", Prefix: "docker.io/bob", Write: true},
		}},
	})}
	tw.alice = append(client(t), remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"}))
	tw.bob = append(client(t), remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-pw"}))
	tw.img = upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
	if err := remote.Write(tw.m.ref(t, "alice/secret:v1"), tw.img, tw.alice...); err != nil {
		t.Fatal(err)
	}
	tw.idx = upstreamtest.RandomIndex(t, 1, types.OCIImageIndex)
	if err := remote.WriteIndex(tw.m.ref(t, "alice/secret:multi"), tw.idx, tw.alice...); err != nil {
		t.Fatal(err)
	}
	return tw
}

// asBob sends one request with bob's credentials.
func (tw *twoWriters) asBob(t *testing.T, method, path, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, tw.m.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("bob", "bob-pw")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestManifestCannotReferenceAnotherRepository: bob's manifest in
// bob/steal naming alice's layer, or bob's index naming alice's image as
// a child, is MANIFEST_BLOB_UNKNOWN (whatever size it claims, and the
// answer does not tell the real one), and bob/steal serves none of it.
func TestManifestCannotReferenceAnotherRepository(t *testing.T) {
	tw := startTwoWriters(t)
	layer := layerDigests(t, tw.img)[0]
	layers, _ := tw.img.Layers()
	layerSize, _ := layers[0].Size()
	child, _ := tw.idx.IndexManifest()
	childDesc := child.Manifests[0]

	// bob's own config, pushed to bob/steal.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := digest.FromBytes(config)
	if resp := tw.asBob(t, http.MethodPost, "/v2/bob/steal/blobs/uploads/?digest="+cd.String(), "application/octet-stream", config); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bob pushes his config: %d", resp.StatusCode)
	}
	image := func(size int64) []byte {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(config))},
			Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.Digest(layer.String()), Size: size}}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		return b
	}
	index := func() []byte {
		x := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
			MediaType: string(childDesc.MediaType), Digest: digest.Digest(childDesc.Digest.String()), Size: childDesc.Size}}}
		x.SchemaVersion = 2
		b, _ := json.Marshal(x)
		return b
	}
	for _, c := range []struct {
		name, mediaType string
		body            []byte
	}{
		{"image naming her layer", ocispec.MediaTypeImageManifest, image(layerSize)},
		{"image naming her layer with a wrong size", ocispec.MediaTypeImageManifest, image(1)},
		{"index naming her image", ocispec.MediaTypeImageIndex, index()},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := tw.asBob(t, http.MethodPut, "/v2/bob/steal/manifests/stolen", c.mediaType, c.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"MANIFEST_BLOB_UNKNOWN"`) {
				t.Fatalf("PUT: %d %s, want 400 MANIFEST_BLOB_UNKNOWN", resp.StatusCode, body)
			}
			for _, n := range []int64{layerSize, childDesc.Size} {
				if strings.Contains(string(body), strconv.FormatInt(n, 10)) {
					t.Errorf("the refusal tells a real size (%d): %s", n, body)
				}
			}
		})
	}
	for _, path := range []string{
		"/v2/bob/steal/blobs/" + layer.String(),
		"/v2/bob/steal/manifests/" + childDesc.Digest.String(),
		"/v2/bob/steal/manifests/stolen",
	} {
		if resp := tw.asBob(t, http.MethodGet, path, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestDeleteCannotReachAnotherRepository: bob's DELETEs of alice's layer
// and manifest through bob/x get exactly the answer a digest never stored
// gets, and alice's image still pulls whole.
func TestDeleteCannotReachAnotherRepository(t *testing.T) {
	tw := startTwoWriters(t)
	md, _ := tw.img.Digest()
	never := make([]byte, 64)
	rand.Read(never)
	unknown := digest.FromBytes(never).String()
	for _, c := range []struct{ kind, hers string }{
		{"blobs", layerDigests(t, tw.img)[0].String()},
		{"manifests", md.String()},
	} {
		got := tw.asBob(t, http.MethodDelete, "/v2/bob/x/"+c.kind+"/"+c.hers, "", nil)
		want := tw.asBob(t, http.MethodDelete, "/v2/bob/x/"+c.kind+"/"+unknown, "", nil)
		if got.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE alice's %s through bob/x: %d, want 404", c.kind, got.StatusCode)
		}
		if a, b := answer(t, got), answer(t, want); a != b {
			t.Errorf("DELETE of alice's %s and of a digest never stored differ:\n%s\n%s", c.kind, a, b)
		}
	}
	img, err := remote.Image(tw.m.ref(t, "alice/secret:v1"), tw.alice...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("alice's image after bob's deletes: %v", err)
	}
}

// answer is a response as a client sees it, less what differs per request.
func answer(t *testing.T, resp *http.Response) string {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	h := resp.Header.Clone()
	h.Del("Date")
	h.Del("X-Request-Id")
	var b strings.Builder
	h.Write(&b)
	return strconv.Itoa(resp.StatusCode) + "\n" + b.String() + string(body)
}

// TestDeleteFromOneRepositoryKeepsTheOther: content in two repositories
// (pushed to one, copied to the other by go-containerregistry with
// cross-repository mounts), deleted from one, stays whole in the other,
// and leaves the disk only with the second delete.
func TestDeleteFromOneRepositoryKeepsTheOther(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})
	img := upstreamtest.RandomImage(t, 1, 8192, types.OCIManifestSchema1)
	if err := remote.Write(mustParse(t, w.Host+"/site/a:v1"), img, client(t)...); err != nil {
		t.Fatal(err)
	}
	src, err := remote.Image(mustParse(t, w.Host+"/site/a:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	// ggcr mounts the layers of an image read from the same registry.
	mounts := &mountCounter{next: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(mounts.next.CloseIdleConnections)
	if err := remote.Write(mustParse(t, w.Host+"/site/b:v1"), src, remote.WithTransport(mounts)); err != nil {
		t.Fatalf("copy with mounts: %v", err)
	}
	if mounts.n.Load() == 0 {
		t.Error("the copy mounted nothing")
	}
	layer := layerDigests(t, img)[0]
	md, _ := img.Digest()
	file := filepath.Join(w.Dir, "blobs", "sha256", layer.Hex[:2], layer.Hex)

	for _, path := range []string{"/v2/site/a/blobs/" + layer.String(), "/v2/site/a/manifests/" + md.String()} {
		if resp := do(t, http.MethodDelete, w.URL+path, ""); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d", path, resp.StatusCode)
		}
	}
	if resp := get(t, w.URL+"/v2/site/a/blobs/"+layer.String()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted layer in site/a: %d, want 404", resp.StatusCode)
	}
	got, err := remote.Image(mustParse(t, w.Host+"/site/b:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("site/b after deletes from site/a: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the layer left the disk while site/b links it: %v", err)
	}
	if resp := do(t, http.MethodDelete, w.URL+"/v2/site/b/blobs/"+layer.String(), ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE from site/b: %d", resp.StatusCode)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the layer stays on disk after its last repository deleted it: %v", err)
	}
}

// mountCounter counts the cross-repository mounts a client made.
type mountCounter struct {
	next *http.Transport
	n    atomic.Int32
}

func (m *mountCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := m.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated {
		m.n.Add(1)
	}
	return resp, err
}
