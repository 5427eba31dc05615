package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestPushWithGoContainerRegistry pushes images and an index with
// go-containerregistry's remote.Write (its streamed PATCH), pulls them
// back through wharf and validates every digest; pushed tags are listed
// (merged with the upstream's), the repositories are in the catalog, and
// pushed content is pinned.
func TestPushWithGoContainerRegistry(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "site/app:upstream-tag", upstreamtest.RandomImage(t, 1, 256, types.OCIManifestSchema1))
	w := startPusher(t, reg.URL, pushOpts{})

	cases := []struct {
		name string
		img  v1.Image
	}{
		{"schema2", upstreamtest.RandomImage(t, 3, 64<<10, types.DockerManifestSchema2)},
		{"oci", upstreamtest.RandomImage(t, 2, 1<<20, types.OCIManifestSchema1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := mustParse(t, w.Host+"/site/app:"+c.name)
			if err := remote.Write(ref, c.img, client(t)...); err != nil {
				t.Fatal(err)
			}
			got, err := remote.Image(ref, client(t)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil {
				t.Fatal(err)
			}
			want, _ := c.img.Digest()
			if d, _ := got.Digest(); d != want {
				t.Fatalf("pulled %s, pushed %s", d, want)
			}
			assertPinned(t, w, want.String())
		})
	}

	t.Run("index", func(t *testing.T) {
		idx := upstreamtest.RandomIndex(t, 3, types.OCIImageIndex)
		ref := mustParse(t, w.Host+"/site/multi:v1")
		if err := remote.WriteIndex(ref, idx, client(t)...); err != nil {
			t.Fatal(err)
		}
		got, err := remote.Index(ref, client(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(got); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("tags merge pushed and upstream", func(t *testing.T) {
		tags, err := remote.List(mustParse(t, w.Host+"/site/app").Context(), client(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(tags, ",") != "oci,schema2,upstream-tag" {
			t.Errorf("tags %v, want oci, schema2 and upstream-tag", tags)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		repos, err := remote.Catalog(t.Context(), mustParse(t, w.Host+"/x").Context().Registry, client(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(repos, ",") != "site/app,site/multi" {
			t.Errorf("catalog %v", repos)
		}
	})
}

// TestPushChunkedAndMonolithic drives the upload protocol by hand as other
// clients do: chunks with Content-Range (an out-of-order one refused with
// 416 and the current Range, then resumed), a status GET, the digest
// checked at PUT (a wrong one keeps nothing), a monolithic POST ?digest=
// and a PUT with the whole body.
func TestPushChunkedAndMonolithic(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})
	blob := randomBytes(t, 3<<20+17)
	d := digest.FromBytes(blob)
	base := w.URL + "/v2/site/raw/blobs/"

	t.Run("chunked", func(t *testing.T) {
		loc := startSession(t, base)
		chunk := 1 << 20
		resp := send(t, "PATCH", w.URL+loc, blob[chunk:2*chunk], "Content-Range", fmt.Sprintf("%d-%d", chunk, 2*chunk-1))
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Range") != "0-0" {
			t.Fatalf("out-of-order chunk: %d Range %q", resp.StatusCode, resp.Header.Get("Range"))
		}
		for off := 0; off < len(blob)-chunk; off += chunk {
			resp := send(t, "PATCH", w.URL+loc, blob[off:off+chunk], "Content-Range", fmt.Sprintf("%d-%d", off, off+chunk-1))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("chunk at %d: %d", off, resp.StatusCode)
			}
			loc = resp.Header.Get("Location")
		}
		st := send(t, "GET", w.URL+loc, nil)
		if st.StatusCode != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", 3<<20-1) {
			t.Fatalf("status: %d Range %q", st.StatusCode, st.Header.Get("Range"))
		}
		rest := blob[3<<20:]
		resp = send(t, "PUT", w.URL+loc+"?digest="+d.String(), rest, "Content-Range", fmt.Sprintf("%d-%d", 3<<20, len(blob)-1))
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("finish: %d %v", resp.StatusCode, resp.Header)
		}
		assertBlob(t, w.URL+resp.Header.Get("Location"), blob)
	})

	t.Run("wrong digest keeps nothing", func(t *testing.T) {
		other := randomBytes(t, 1000)
		loc := startSession(t, base)
		wrong := digest.FromString("something else")
		resp := send(t, "PUT", w.URL+loc+"?digest="+wrong.String(), other)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(readAll(t, resp), "DIGEST_INVALID") {
			t.Fatalf("wrong digest: %d", resp.StatusCode)
		}
		if resp := send(t, "HEAD", base+wrong.String(), nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("blob under the wrong digest: %d", resp.StatusCode)
		}
		if resp := send(t, "GET", w.URL+loc, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("session after a wrong digest: %d, want 404", resp.StatusCode)
		}
		if n := testutil.ToFloat64(w.Metrics.UploadsActive); n != 0 {
			t.Errorf("%v uploads still open", n)
		}
	})

	t.Run("monolithic POST", func(t *testing.T) {
		small := randomBytes(t, 4096)
		sd := digest.FromBytes(small)
		resp := send(t, "POST", base+"uploads/?digest="+sd.String(), small)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST ?digest=: %d", resp.StatusCode)
		}
		assertBlob(t, w.URL+resp.Header.Get("Location"), small)
	})

	t.Run("monolithic PUT", func(t *testing.T) {
		small := randomBytes(t, 4096)
		sd := digest.FromBytes(small)
		loc := startSession(t, base)
		resp := send(t, "PUT", w.URL+loc+"?digest="+sd.String(), small)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
		assertBlob(t, w.URL+resp.Header.Get("Location"), small)
	})

	t.Run("manifest referencing a missing blob", func(t *testing.T) {
		body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":3},"layers":[]}`,
			digest.FromString("nope"))
		resp := send(t, "PUT", w.URL+"/v2/site/raw/manifests/v1", []byte(body), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(readAll(t, resp), "MANIFEST_BLOB_UNKNOWN") {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	})

	t.Run("manifest over 4 MiB", func(t *testing.T) {
		resp := send(t, "PUT", w.URL+"/v2/site/raw/manifests/big", bytes.Repeat([]byte(" "), oci.MaxManifestSize+1),
			"Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	})
}

// TestCraneCopyBetweenRepos copies an image from one wharf repository to
// another with crane: blobs are stored once for the whole wharf, so crane
// finds every one already there (or mounts it) and uploads no byte.
func TestCraneCopyBetweenRepos(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})
	img := upstreamtest.RandomImage(t, 3, 32<<10, types.OCIManifestSchema1)
	if err := remote.Write(mustParse(t, w.Host+"/team/a:v1"), img, client(t)...); err != nil {
		t.Fatal(err)
	}
	uploads := func() float64 {
		return testutil.ToFloat64(w.Metrics.Requests.WithLabelValues("blob_upload", "PATCH", "202")) +
			testutil.ToFloat64(w.Metrics.Requests.WithLabelValues("blob_upload", "POST", "202"))
	}
	before := uploads()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	if err := crane.Copy(w.Host+"/team/a:v1", w.Host+"/team/b:v1", crane.Insecure, crane.WithTransport(tr)); err != nil {
		t.Fatal(err)
	}
	if n := uploads() - before; n != 0 {
		t.Errorf("%v upload requests, want none", n)
	}
	got, err := remote.Image(mustParse(t, w.Host+"/team/b:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
}

// TestReferrersAndDeletes pushes an artifact whose subject is an image,
// finds it with the referrers API (and go-containerregistry's client),
// deletes it, and sees deletes switched off answer 405 UNSUPPORTED.
func TestReferrersAndDeletes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	w := startPusher(t, reg.URL, pushOpts{})
	img := upstreamtest.RandomImage(t, 1, 1024, types.OCIManifestSchema1)
	subjRef := mustParse(t, w.Host+"/site/sig:v1")
	if err := remote.Write(subjRef, img, client(t)...); err != nil {
		t.Fatal(err)
	}
	subj, _ := img.Digest()
	desc, err := remote.Head(subjRef, client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.Subject(mutate.ConfigMediaType(upstreamtest.RandomImage(t, 1, 64, types.OCIManifestSchema1), "application/vnd.example.sig"), *desc).(v1.Image)
	artDigest, _ := art.Digest()
	artRef := mustParse(t, w.Host+"/site/sig@"+artDigest.String())
	if err := remote.Write(artRef, art, client(t)...); err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(subjRef.Context().Digest(subj.String()), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != artDigest || im.Manifests[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("referrers %+v", im.Manifests)
	}
	if err := remote.Delete(artRef, client(t)...); err != nil {
		t.Fatal(err)
	}
	idx, _ = remote.Referrers(subjRef.Context().Digest(subj.String()), client(t)...)
	if im, _ := idx.IndexManifest(); len(im.Manifests) != 0 {
		t.Errorf("referrers after delete: %+v", im.Manifests)
	}

	// The same store with deletes switched off.
	w.stop()
	off := startPusher(t, reg.URL, pushOpts{dir: w.Dir, writer: push.Options{DisableDeletes: true}})
	resp := send(t, "DELETE", off.URL+"/v2/site/sig/manifests/"+subj.String(), nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(readAll(t, resp), "UNSUPPORTED") {
		t.Errorf("delete with deletes off: %d", resp.StatusCode)
	}
	if resp := send(t, "HEAD", off.URL+"/v2/site/sig/manifests/v1", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("pushed tag after a restart: %d", resp.StatusCode)
	}
}

func mustParse(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertPinned(t *testing.T, w *pusher, d string) {
	t.Helper()
	if !w.store.Pinned(digest.Digest(d)) {
		t.Errorf("%s is not pinned", d)
	}
}

func startSession(t *testing.T, base string) string {
	t.Helper()
	resp := send(t, "POST", base+"uploads/", nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" || resp.Header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("POST uploads: %d %v", resp.StatusCode, resp.Header)
	}
	return resp.Header.Get("Location")
}

func send(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func assertBlob(t *testing.T, url string, want []byte) {
	t.Helper()
	resp := send(t, "GET", url, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 || got != string(want) {
		t.Fatalf("GET %s: %d, %d bytes, want %d", url, resp.StatusCode, len(got), len(want))
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}
