package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestImportDigestMismatchKeepsNothing: bytes that do not hash to the
// digest (or number the size) they are imported as leave no file, no
// index entry and no temp file behind.
func TestImportDigestMismatchKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir)
	defer c.Close()
	body := randomBytes(4096)
	d := digest.FromBytes(body)
	tampered := append([]byte{}, body...)
	tampered[100] ^= 1
	if err := c.ImportBlob(context.Background(), d, int64(len(body)), bytes.NewReader(tampered)); !errors.Is(err, ErrDigestInvalid) {
		t.Errorf("tampered bytes: %v, want ErrDigestInvalid", err)
	}
	if err := c.ImportBlob(context.Background(), d, 10, bytes.NewReader(body)); !errors.Is(err, ErrSizeInvalid) {
		t.Errorf("wrong size: %v, want ErrSizeInvalid", err)
	}
	if _, ok := c.HasContent(d); ok {
		t.Error("content kept after a failed import")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("temp files left: %d", len(entries))
	}
	if err := c.ImportBlob(context.Background(), d, -1, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if meta, err := c.index.Blob(d); err != nil || !meta.Pinned {
		t.Errorf("imported blob: %+v, %v; want it pinned", meta, err)
	}
}

// TestImportManifestNeedsItsBlobsAndTagsLocally: an image manifest is
// refused until its blobs are stored; once stored, its tag is a local tag
// that Manifest finds with no origin configured at all.
func TestImportManifestNeedsItsBlobsAndTagsLocally(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), randomBytes(512)
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: desc(ocispec.MediaTypeImageConfig, cfg),
		Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, layer)}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	repo := Repo{Upstream: "docker.io", Path: "library/x"}
	if _, err := c.ImportManifest(repo, "v1", ocispec.MediaTypeImageManifest, "", body); !errors.Is(err, ErrManifestBlobUnknown) {
		t.Fatalf("manifest before its blobs: %v, want ErrManifestBlobUnknown", err)
	}
	for _, b := range [][]byte{cfg, layer} {
		if err := c.ImportBlob(context.Background(), digest.FromBytes(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.ImportManifest(repo, "v1", ocispec.MediaTypeImageManifest, digest.FromBytes(body), body)
	if err != nil {
		t.Fatal(err)
	}
	served, err := c.Manifest(context.Background(), repo, "v1", nil)
	if err != nil || served.Descriptor.Digest != got.Digest {
		t.Fatalf("Manifest of the imported tag: %v, %v", served, err)
	}
	tagged, err := c.TaggedImages()
	if err != nil || len(tagged) != 1 || !tagged[0].Local || tagged[0].Descriptor.Digest != got.Digest {
		t.Errorf("TaggedImages: %+v, %v", tagged, err)
	}
}
