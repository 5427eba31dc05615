package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// TestImportDockerSaveKeepsImageID imports the fixture docker save wrote
// (the format before docker 25): the image lands under its RepoTags name
// read as Docker Hub's, keeps its image ID (the config is stored as
// saved) and its CMD, and each uncompressed layer is stored under its
// diff ID with the media type that says it is uncompressed.
func TestImportDockerSaveKeepsImageID(t *testing.T) {
	c := openStore(t, t.TempDir())
	n, out, err := importPaths(c, "", fixture)
	if err != nil || n.Tags != 1 || !strings.Contains(out, "imported docker.io/library/wharf-fixture:v1") {
		t.Fatalf("import: %+v, %v\n%s", n, err, out)
	}
	tg, err := c.Resolve(cache.Repo{Upstream: "docker.io", Path: "library/wharf-fixture"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := c.StoredManifest(tg.Descriptor.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb.Body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != fixtureImageID {
		t.Errorf("config %s, want the saved image's ID %s", m.Config.Digest, fixtureImageID)
	}
	cfg := readContent(t, c, m.Config.Digest)
	var cf struct {
		Config struct{ Cmd []string }
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &cf); err != nil || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "/hello.txt" {
		t.Errorf("config %s, %v: the saved CMD is lost", cfg, err)
	}
	if len(m.Layers) == 0 || len(m.Layers) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, the config lists %d", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayer || l.Digest != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: %s %s, want %s %s", i, l.MediaType, l.Digest, ocispec.MediaTypeImageLayer, cf.RootFS.DiffIDs[i])
		}
		if got := digest.FromBytes(readContent(t, c, l.Digest)); got != l.Digest {
			t.Errorf("layer %d hashes to %s, want %s", i, got, l.Digest)
		}
	}
}

// TestImportRefusesTamperedDockerSave changes one byte of the fixture's
// layer: the import fails on its digest and the store keeps nothing of
// that image (verified before visible).
func TestImportRefusesTamperedDockerSave(t *testing.T) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("hello from a docker save fixture"))
	if i < 0 {
		t.Fatal("fixture lacks its file")
	}
	b[i] = 'j'
	bad := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := openStore(t, dir)
	if _, out, err := importPaths(c, "", bad); !errors.Is(err, cache.ErrDigestInvalid) || !strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("tampered import: %v, want a digest error that says nothing was imported\n%s", err, out)
	}
	if tags, err := c.TaggedImages(); err != nil || len(tags) != 0 {
		t.Errorf("tags after a failed import: %v, %v", tags, err)
	}
	if bytes, items := c.Usage(); bytes != 0 || items != 0 {
		t.Errorf("the store holds %d items, %d bytes after a failed import", items, bytes)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("temp files left: %v", entries)
	}
}

// readContent reads stored content whole (small test content only).
func readContent(t *testing.T, c *cache.Cache, d digest.Digest) []byte {
	t.Helper()
	b, err := c.OpenContent(d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body, err := io.ReadAll(b.File)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
