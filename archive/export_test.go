package archive

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

var amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// exportStore is a store holding an image of each kind: a docker save's
// (uncompressed layers), an OCI image, and an index of three platforms
// whose arm64 image the store lacks, as after a warm of some platforms.
// The last two come in through an OCI layout another tool wrote
// (go-containerregistry's), named by ref.name. It returns what each tag
// resolves to, and the index's amd64 image.
func exportStore(t *testing.T) (*cache.Cache, map[string]digest.Digest, digest.Digest) {
	t.Helper()
	lp := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	idx := upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex)
	img := upstreamtest.RandomImage(t, 2, 4096, upstreamtest.OCIManifest)
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "team/multi:v1"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "docker.io/team/oci:v1"})); err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var amd digest.Digest
	for _, m := range im.Manifests {
		switch m.Platform.Architecture {
		case "amd64":
			amd = digest.Digest(m.Digest.String())
		case "arm64": // a platform left out
			if err := os.Remove(filepath.Join(lp, blobPath(digest.Digest(m.Digest.String())))); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := openStore(t, t.TempDir())
	if n, out, err := importPaths(c, "", lp, fixture); err != nil || n.Tags != 3 {
		t.Fatalf("import: %+v, %v\n%s", n, err, out)
	}
	return c, tagsOf(t, c), amd
}

// tagsOf is every tag a store holds, and its digest.
func tagsOf(t *testing.T, c *cache.Cache) map[string]digest.Digest {
	t.Helper()
	tags, err := c.TaggedImages()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]digest.Digest{}
	for _, tg := range tags {
		out[tg.String()] = tg.Descriptor.Digest
	}
	return out
}

// TestExportImportRoundTrip exports a store in each format and imports
// each export into a fresh store: every tag comes back at its digest,
// except in docker format, which carries an index's image for the one
// platform asked for. The OCI layout is one go-containerregistry reads
// and validates; an index's missing platform is reported, not fatal;
// and the same export is the same bytes.
func TestExportImportRoundTrip(t *testing.T) {
	c, want, amd := exportStore(t)
	tmp := t.TempDir()
	for _, tc := range []struct {
		name   string
		format Format
		output string
	}{
		{"oci-dir", OCI, filepath.Join(tmp, "layout")},
		{"oci-tar", OCI, filepath.Join(tmp, "images.tar")},
		{"docker", Docker, filepath.Join(tmp, "docker.tar")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var report strings.Builder
			n, err := Export(context.Background(), c, ExportOptions{
				All: true, Name: hubNamer, Format: tc.format, Platform: amd64, Output: tc.output, Report: &report,
			})
			if err != nil || n.Images != 3 || n.Files == 0 || n.Bytes == 0 {
				t.Fatalf("export: %+v, %v\n%s", n, err, report.String())
			}
			if tc.format == OCI && !strings.Contains(report.String(), "exported docker.io/team/multi:v1  "+want["docker.io/team/multi:v1"].String()+
				"  (1 of its index's platforms are not in the store and were left out)") {
				t.Errorf("the report does not say the index lacks a platform:\n%s", report.String())
			}
			if tc.name == "oci-dir" {
				validateLayout(t, tc.output, amd)
			}
			site := openStore(t, t.TempDir())
			if n, out, err := importPaths(site, "", tc.output); err != nil || n.Tags != 3 {
				t.Fatalf("import of the export: %+v, %v\n%s", n, err, out)
			}
			expect := maps.Clone(want)
			if tc.format == Docker {
				expect["docker.io/team/multi:v1"] = amd
			}
			if got := tagsOf(t, site); !reflect.DeepEqual(got, expect) {
				t.Errorf("tags after the round trip:\n%v\nwant\n%v", got, expect)
			}
		})
	}
	again := filepath.Join(tmp, "again.tar")
	if _, err := Export(context.Background(), c, ExportOptions{All: true, Name: hubNamer, Format: OCI, Output: again, Report: &strings.Builder{}}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(tmp, "images.tar"))
	b, _ := os.ReadFile(again)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("two exports of the same store differ (%d and %d bytes)", len(a), len(b))
	}
}

// validateLayout has go-containerregistry read and validate every image
// of the layout at dir (of an index, its image want: the export lacks one
// of its platforms, which go-containerregistry would not allow).
func validateLayout(t *testing.T, dir string, want digest.Digest) {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil || len(im.Manifests) != 3 {
		t.Fatalf("index.json: %v, %v", im, err)
	}
	for _, d := range im.Manifests {
		img, err := ii.Image(d.Digest)
		if d.MediaType.IsIndex() {
			var child v1.ImageIndex
			if child, err = ii.ImageIndex(d.Digest); err == nil {
				h, _ := v1.NewHash(want.String())
				img, err = child.Image(h)
			}
		}
		if err == nil {
			err = validate.Image(img, validate.Fast)
		}
		if err != nil {
			t.Errorf("go-containerregistry reads %s: %v", d.Digest, err)
		}
	}
}

// TestExportByName exports images by name, by tag and by digest, into
// stdout; a name the store lacks is refused before anything is written.
func TestExportByName(t *testing.T) {
	c, want, _ := exportStore(t)
	var out bytes.Buffer
	var report strings.Builder
	byDigest := "team/oci@" + want["docker.io/team/oci:v1"].String()
	n, err := Export(context.Background(), c, ExportOptions{
		Images: []string{"wharf-fixture:v1", byDigest}, Name: hubNamer, Format: OCI, Output: "-", Stdout: &out, Report: &report,
	})
	if err != nil || n.Images != 2 || !strings.Contains(report.String(), "exported docker.io/library/wharf-fixture:v1") ||
		!strings.Contains(report.String(), "exported docker.io/team/oci@"+want["docker.io/team/oci:v1"].String()) {
		t.Fatalf("export: %+v, %v\n%s", n, err, report.String())
	}
	tarball := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(tarball, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	site := openStore(t, t.TempDir())
	// The image exported by digest has no tag to import it under.
	if n, msg, err := importPaths(site, "", tarball); err != nil || n.Tags != 1 || n.Skipped != 1 {
		t.Errorf("import of the export: %+v, %v\n%s", n, err, msg)
	}

	missing := filepath.Join(t.TempDir(), "missing.tar")
	_, err = Export(context.Background(), c, ExportOptions{Images: []string{"team/absent:v1"}, Name: hubNamer, Format: OCI, Output: missing})
	if !errors.Is(err, cache.ErrNotFound) || !strings.Contains(err.Error(), "team/absent:v1 (docker.io/team/absent)") {
		t.Errorf("export of a missing image: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused export wrote its output: %v", err)
	}
	_, err = Export(context.Background(), c, ExportOptions{Images: []string{"quay.io/team/oci:v1"}, Name: hubNamer, Format: OCI, Output: missing})
	var unserved *NotServedError
	if !errors.As(err, &unserved) {
		t.Errorf("export of a name on a registry not served: %v", err)
	}
}

// TestExportRefusesCorruptContent damages one stored layer (same size,
// one bit flipped): the export stops on it rather than carry it, and the
// layout directory holds no file under its name.
func TestExportRefusesCorruptContent(t *testing.T) {
	dir := t.TempDir()
	c := openStore(t, dir)
	l := newTestLayout("docker.io/library/corrupt:v1", bytes.Repeat([]byte("layer "), 100))
	archive := filepath.Join(t.TempDir(), "in.tar")
	writeTarFile(t, archive, l.entries)
	if _, out, err := importPaths(c, "", archive); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	var stored string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == l.layer.Encoded() {
			stored = p
		}
		return nil
	})
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatalf("the stored layer: %v", err)
	}
	b[0] ^= 1
	if err := os.WriteFile(stored, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layout")
	_, err = Export(context.Background(), c, ExportOptions{All: true, Name: hubNamer, Format: OCI, Output: out, Report: &strings.Builder{}})
	if !errors.Is(err, errCorrupt) {
		t.Fatalf("export of a corrupt layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, blobPath(l.layer))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the corrupt layer was written: %v", err)
	}
}
