package index

import (
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestLoadWritesWhatTheSingleWritesWould: a bulk load is read back by the
// same lookups as the single writes (content, links both ways, pushed
// tags with their count, mirrored tags, the catalog), and only an index
// nothing was written to is Empty.
func TestLoadWritesWhatTheSingleWritesWould(t *testing.T) {
	x := open(t, t.TempDir())
	defer x.Close()
	if empty, err := x.Empty(); err != nil || !empty {
		t.Fatalf("a new index: Empty %v, %v; want true", empty, err)
	}
	d := digest.FromString("manifest")
	rec := TagRecord{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 8, Checked: time.Unix(1000, 0).UTC()}
	l := x.Load()
	for _, err := range []error{
		l.Blob(d, BlobMeta{Size: 8, MediaType: rec.MediaType, Pinned: true}),
		l.Link("example.com/team/app", d),
		l.LocalTag("example.com/team/app", "v1", rec),
		l.Tag("docker.io/library/base", "latest", "a,b", rec),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if empty, err := x.Empty(); err != nil || empty {
		t.Errorf("after a load: Empty %v, %v; want false", empty, err)
	}
	if m, err := x.Blob(d); err != nil || !m.Pinned || m.Size != 8 {
		t.Errorf("Blob: %+v, %v; want pinned, 8 bytes", m, err)
	}
	if ok, err := x.HasLink("example.com/team/app", d); !ok || err != nil {
		t.Errorf("HasLink: %v, %v", ok, err)
	}
	if had, held, err := x.Unlink("example.com/team/app", d); !had || held || err != nil {
		t.Errorf("Unlink: had %v, held %v, %v; want the link and its reverse key", had, held, err)
	}
	if r, err := x.LocalTag("example.com/team/app", "v1"); err != nil || r != rec {
		t.Errorf("LocalTag: %+v, %v; want %+v", r, err, rec)
	}
	if r, err := x.Tag("docker.io/library/base", "latest", "a,b"); err != nil || r != rec {
		t.Errorf("Tag: %+v, %v; want %+v", r, err, rec)
	}
	want := []string{"docker.io/library/base", "example.com/team/app"}
	if got, err := x.Repositories(); err != nil || !slices.Equal(got, want) {
		t.Errorf("Repositories: %q, %v; want %q", got, err, want)
	}
}
