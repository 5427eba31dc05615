package archive

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// TestImportOfNothingFails imports a layout as skopeo and buildkit write
// it, its one image named by a bare tag: without a repository (--repo) nothing
// can be stored, and the import must fail saying why rather than exit 0 with an
// empty mirror. With one the same archive imports.
func TestImportOfNothingFails(t *testing.T) {
	l := newTestLayout("unused", []byte("a layer named by a bare tag"))
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: l.manifest, Size: int64(len(l.manifestBody)),
		Annotations: map[string]string{annotationRefName: "v1"}}}}
	idx.SchemaVersion = 2
	index, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "bare.tar")
	writeTarFile(t, archive, without(l.entries, ocispec.ImageIndexFile, reg(ocispec.ImageIndexFile, index)))
	c := openStore(t, t.TempDir())

	_, out, err := importPaths(c, "", archive)
	if err == nil {
		t.Fatalf("import of a layout whose every image was skipped succeeded:\n%s", out)
	}
	for _, want := range []string{"nothing imported", "1 images were skipped", "--repo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, _, err := importPaths(c, "myteam/app", archive); err != nil {
		t.Fatalf("import with Repo myteam/app: %v", err)
	}
	want := cache.Repo{Upstream: "docker.io", Path: "myteam/app"}
	if tg, err := c.Resolve(want, "v1"); err != nil || tg.Descriptor.Digest != l.manifest {
		t.Errorf("%s:v1 after the import with Repo: %+v, %v; want %s", want, tg, err, l.manifest)
	}
}
