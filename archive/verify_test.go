package archive

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

	"github.com/wharf-mirror/wharf/cache"
)

// TestImportDigestMismatchKeepsNothing: bytes that do not hash to the
// digest (or number the size) they are imported as, or an import stopped
// half-way, leave no file, no index entry and no staged file behind;
// bytes that do are stored pinned.
func TestImportDigestMismatchKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	c := openStore(t, dir)
	im := &importer{ctx: context.Background(), st: c}
	body := bytes.Repeat([]byte("layer "), 1000)
	d := digest.FromBytes(body)
	tampered := bytes.Clone(body)
	tampered[100] ^= 1
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, tt := range []struct {
		name string
		im   *importer
		d    digest.Digest
		size int64
		body []byte
		want error
	}{
		{"tampered bytes", im, d, int64(len(body)), tampered, cache.ErrDigestInvalid},
		{"wrong size", im, d, 10, body, cache.ErrSizeInvalid},
		{"no digest", im, "", int64(len(body)), body, cache.ErrDigestInvalid},
		{"stopped", &importer{ctx: stopped, st: c}, d, int64(len(body)), body, context.Canceled},
	} {
		if err := tt.im.putBlob(tt.d, tt.size, bytes.NewReader(tt.body)); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, ok := c.HasContent(d); ok {
		t.Error("content kept after a failed import")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("staged files left: %d", len(entries))
	}
	if err := im.putBlob(d, -1, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if !c.Pinned(d) {
		t.Error("imported blob not pinned")
	}
}

// refusingStore is a store whose last step fails: full, or unreachable.
type refusingStore struct{ *cache.Cache }

var errIngest = errors.New("ingest refused")

func (refusingStore) Ingest(context.Context, *os.File, digest.Digest, int64, bool) error {
	return errIngest
}

// TestRefusedIngestLeavesNoStagedFile: when the store refuses verified
// bytes, the import removes the file it staged them in.
func TestRefusedIngestLeavesNoStagedFile(t *testing.T) {
	dir := t.TempDir()
	im := &importer{ctx: context.Background(), st: refusingStore{openStore(t, dir)}}
	body := []byte("a blob the store refuses")
	if err := im.putBlob(digest.FromBytes(body), int64(len(body)), bytes.NewReader(body)); !errors.Is(err, errIngest) {
		t.Errorf("import: %v, want the store's error", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("%d staged files left behind", len(entries))
	}
}

// TestImportManifestNeedsItsBlobs: an image manifest is refused, and no
// tag points at it, until every blob it references is stored at the size
// it says; then its tag is a local tag.
func TestImportManifestNeedsItsBlobs(t *testing.T) {
	c := openStore(t, t.TempDir())
	im := &importer{ctx: context.Background(), st: c}
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), []byte("a layer")
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: desc(ocispec.MediaTypeImageConfig, cfg),
		Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, layer)}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	m.Layers[0].Size++
	wrongSize, _ := json.Marshal(m)
	repo := cache.Repo{Upstream: "docker.io", Path: "library/x"}
	if _, err := im.putManifest(repo, "v1", ocispec.MediaTypeImageManifest, "", body); !errors.Is(err, cache.ErrManifestBlobUnknown) {
		t.Fatalf("manifest before its blobs: %v, want ErrManifestBlobUnknown", err)
	}
	for _, b := range [][]byte{cfg, layer} {
		if err := im.putBlob(digest.FromBytes(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := im.putManifest(repo, "v1", ocispec.MediaTypeImageManifest, "", wrongSize); !errors.Is(err, cache.ErrManifestInvalid) {
		t.Fatalf("manifest saying the wrong size: %v, want ErrManifestInvalid", err)
	}
	if _, err := c.Resolve(repo, "v1"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("a refused manifest's tag resolves: %v", err)
	}
	got, err := im.putManifest(repo, "v1", ocispec.MediaTypeImageManifest, digest.FromBytes(body), body)
	if err != nil {
		t.Fatal(err)
	}
	if tg, err := c.Resolve(repo, "v1"); err != nil || !tg.Local || tg.Descriptor.Digest != got.Digest {
		t.Errorf("Resolve: %+v, %v; want the local tag", tg, err)
	}
}
