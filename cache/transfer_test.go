package cache

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ingestBytes stores body through the doors an import uses (a staged
// TempFile handed to Ingest, pinned) and returns its digest.
func ingestBytes(t testing.TB, c *Cache, body []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(body)
	f, err := c.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := c.Ingest(context.Background(), f, d, int64(len(body)), true); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPinKeepsStoredContent: Pin marks content a fill cached as pinned,
// as an import that finds it stored already needs; content not stored is
// not found.
func TestPinKeepsStoredContent(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	body := randomBytes(512)
	d := digest.FromBytes(body)
	if err := c.Pin(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Pin of what is not stored: %v, want ErrNotFound", err)
	}
	if err := c.putBytes(context.Background(), d, body); err != nil {
		t.Fatal(err)
	}
	if err := c.recordContent(d, int64(len(body)), "", nil, false); err != nil {
		t.Fatal(err)
	}
	if c.Pinned(d) {
		t.Fatal("cached content pinned before Pin")
	}
	if err := c.Pin(d); err != nil || !c.Pinned(d) {
		t.Errorf("Pin: %v, pinned %v; want it pinned", err, c.Pinned(d))
	}
}

// TestIngestManifestVerifiesAndTagsLocally: a manifest whose bytes do not
// hash to the digest given is refused and nothing is kept; one that does
// is stored pinned, and its tag is a local tag that Manifest finds with no
// origin configured at all.
func TestIngestManifestVerifiesAndTagsLocally(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	body := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[]}`)
	mt := ocispec.MediaTypeImageIndex
	repo := Repo{Upstream: "docker.io", Path: "library/x"}

	for _, bad := range []digest.Digest{digest.FromString("other bytes"), ""} {
		if _, err := c.IngestManifest(repo, "v1", mt, bad, body); !errors.Is(err, ErrDigestInvalid) {
			t.Errorf("manifest as %q: %v, want ErrDigestInvalid", bad, err)
		}
	}
	if _, err := c.Resolve(repo, "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused manifest's tag resolves: %v", err)
	}

	got, err := c.IngestManifest(repo, "v1", mt, digest.FromBytes(body), body)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Pinned(got.Digest) {
		t.Error("imported manifest not pinned")
	}
	served, err := c.Manifest(context.Background(), repo, "v1", nil)
	if err != nil || served.Descriptor.Digest != got.Digest {
		t.Fatalf("Manifest of the imported tag: %v, %v", served, err)
	}
	// Tags cached from an upstream list beside the local ones, in order,
	// and a tag that is both is listed once, as the local tag.
	for _, tag := range []string{"v1", "a0"} {
		if err := c.putTag(repo, tag, "", got, c.opts.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tagged, err := c.TaggedImages()
	if err != nil || len(tagged) != 2 || tagged[0].Tag != "a0" || tagged[0].Local ||
		tagged[1].Tag != "v1" || !tagged[1].Local || tagged[1].Descriptor.Digest != got.Digest {
		t.Errorf("TaggedImages: %+v, %v", tagged, err)
	}
}
