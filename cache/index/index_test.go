package index

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// at is a time as the index gives it back: JSON keeps nanoseconds and
// UTC but not the monotonic reading, so records compare with DeepEqual.
func at(sec int64) time.Time { return time.Unix(sec, 123456789).UTC() }

// mustOpen opens dir and closes it when the test ends (Close is
// idempotent, so a test may close earlier to reopen).
func mustOpen(t *testing.T, dir string) *Index {
	t.Helper()
	x := open(t, dir)
	t.Cleanup(func() { x.Close() })
	return x
}

// reopen closes x and opens its directory again, as a restart would.
func reopen(t *testing.T, x *Index, dir string) *Index {
	t.Helper()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	return mustOpen(t, dir)
}

func TestBlobRecordsRoundTrip(t *testing.T) {
	layer, config := digest.FromString("layer"), digest.FromString("config")
	tests := []struct {
		name string
		meta BlobMeta
	}{
		{"layer", BlobMeta{Size: 1 << 40, Added: at(1)}},
		{"manifest with references", BlobMeta{Size: 512, MediaType: ocispec.MediaTypeImageManifest, Added: at(2), Refs: []digest.Digest{config, layer}}},
		{"pinned push", BlobMeta{Size: 7, Added: at(3), Pinned: true}},
		{"empty blob", BlobMeta{Size: 0, Added: at(4)}},
	}
	x := mustOpen(t, t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := digest.FromString(tt.name)
			if err := x.PutBlob(d, tt.meta); err != nil {
				t.Fatal(err)
			}
			got, err := x.Blob(d)
			if err != nil || !reflect.DeepEqual(got, tt.meta) {
				t.Errorf("Blob: %+v, %v; want %+v", got, err, tt.meta)
			}
		})
	}
}

// TestMissingRecordsAreErrNotFound: callers tell "not cached" from "index
// broken" with errors.Is, for every kind of record.
func TestMissingRecordsAreErrNotFound(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	d := digest.FromString("absent")
	// Something in the repository, so the lookups are not short-cut by
	// an empty index.
	if err := x.PutLocalTag("docker.io/a", "other", TagRecord{Digest: d}); err != nil {
		t.Fatal(err)
	}
	if err := x.PutTag("docker.io/a", "other", "", TagRecord{Digest: d}); err != nil {
		t.Fatal(err)
	}
	lookups := map[string]func() error{
		"Blob": func() error { _, err := x.Blob(d); return err },
		"Tag":  func() error { _, err := x.Tag("docker.io/a", "latest", ""); return err },
		"Tag of another Accept set": func() error {
			_, err := x.Tag("docker.io/a", "other", ocispec.MediaTypeImageIndex)
			return err
		},
		"LocalTag": func() error { _, err := x.LocalTag("docker.io/a", "latest"); return err },
		"LocalTag of a repository without pushes": func() error {
			_, err := x.LocalTag("docker.io/b", "other")
			return err
		},
		"Upload": func() error { _, err := x.Upload("no-such-session"); return err },
		"Job":    func() error { _, err := x.Queue().Job(JobKey("docker.io/a", "latest", d)); return err },
	}
	for name, lookup := range lookups {
		if err := lookup(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

// TestPutTagMovesTheTag: a tag revalidated to a new digest answers with
// the new one, and is still one tag.
func TestPutTagMovesTheTag(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo, accept = "docker.io/library/alpine", "application/vnd.oci.image.index.v1+json"
	old := TagRecord{Digest: digest.FromString("old"), MediaType: ocispec.MediaTypeImageIndex, Size: 100, Checked: at(1)}
	moved := TagRecord{Digest: digest.FromString("new"), MediaType: ocispec.MediaTypeImageIndex, Size: 120, Checked: at(2)}
	for _, r := range []TagRecord{old, moved} {
		if err := x.PutTag(repo, "latest", accept, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := x.Tag(repo, "latest", accept); err != nil || !reflect.DeepEqual(got, moved) {
		t.Errorf("Tag: %+v, %v; want the moved record %+v", got, err, moved)
	}
	if tags, err := x.Tags(repo); err != nil || !reflect.DeepEqual(tags, []string{"latest"}) {
		t.Errorf("Tags: %q, %v; want [latest]", tags, err)
	}
}

// TestTagIsKeptPerAcceptSet: one tag answers differently to clients that
// accept an index and clients that accept only a Docker manifest.
func TestTagIsKeptPerAcceptSet(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/library/alpine"
	byAccept := map[string]TagRecord{
		"": {Digest: digest.FromString("index"), MediaType: ocispec.MediaTypeImageIndex},
		"application/vnd.docker.distribution.manifest.v2+json": {Digest: digest.FromString("amd64"), MediaType: "application/vnd.docker.distribution.manifest.v2+json"},
	}
	for accept, r := range byAccept {
		if err := x.PutTag(repo, "3", accept, r); err != nil {
			t.Fatal(err)
		}
	}
	for accept, want := range byAccept {
		if got, err := x.Tag(repo, "3", accept); err != nil || got != want {
			t.Errorf("Tag for Accept %q: %+v, %v; want %+v", accept, got, err, want)
		}
	}
	if tags, _ := x.Tags(repo); len(tags) != 1 {
		t.Errorf("Tags: %q; want the tag once however many Accept sets it has", tags)
	}
}

// TestDeleteTagTakesOnlyThatTag: every Accept set's record of the tag
// goes; a tag it is a prefix of, and the same tag elsewhere, stay.
func TestDeleteTagTakesOnlyThatTag(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	r := TagRecord{Digest: digest.FromString("m")}
	puts := []struct{ repo, tag, accept string }{
		{"docker.io/a", "v1", ""},
		{"docker.io/a", "v1", "application/vnd.oci.image.manifest.v1+json"},
		{"docker.io/a", "v1.2", ""},
		{"docker.io/a", "v10", ""},
		{"docker.io/a/b", "v1", ""},
		{"docker.io/ab", "v1", ""},
	}
	for _, p := range puts {
		if err := x.PutTag(p.repo, p.tag, p.accept, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.DeleteTag("docker.io/a", "v1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range puts {
		_, err := x.Tag(p.repo, p.tag, p.accept)
		gone := p.repo == "docker.io/a" && p.tag == "v1"
		if gone && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s:%s (Accept %q) survived its delete: %v", p.repo, p.tag, p.accept, err)
		}
		if !gone && err != nil {
			t.Errorf("%s:%s (Accept %q) went with docker.io/a:v1: %v", p.repo, p.tag, p.accept, err)
		}
	}
}

// TestTagsListInOrderAndStayInTheirRepository: the tags list is sorted
// the way cache.Page pages it (byte order: the order sort.SearchStrings
// finds "last" in), and a repository whose name extends another's is not
// part of it.
func TestTagsListInOrderAndStayInTheirRepository(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/library/alpine"
	// Inserted out of order; sorted, "1.10" precedes "1.9" and upper
	// case precedes lower.
	tags := []string{"latest", "1.9", "edge", "1.10", "V2", "3.19", "a_b", "a-b", "a.b"}
	for _, tag := range tags {
		if err := x.PutTag(repo, tag, "", TagRecord{Digest: digest.FromString(tag)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []string{"docker.io/library/alpine/sub", "docker.io/library/alpinex", "docker.io/library/alpin"} {
		if err := x.PutTag(other, "other", "", TagRecord{}); err != nil {
			t.Fatal(err)
		}
	}
	want := append([]string(nil), tags...)
	sort.Strings(want)
	got, err := x.Tags(repo)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Tags: %q, %v; want %q", got, err, want)
	}
	if got, err := x.Tags("docker.io/library/nothing"); err != nil || len(got) != 0 {
		t.Errorf("Tags of an unknown repository: %q, %v; want none", got, err)
	}
}

// TestRepositoriesAreEveryRepositorySeen: the catalog holds repositories
// with mirrored tags, pushed tags, and manifests pushed by digest alone,
// once each and sorted.
func TestRepositoriesAreEveryRepositorySeen(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	r := TagRecord{Digest: digest.FromString("m")}
	steps := []func() error{
		func() error { return x.PutTag("docker.io/library/redis", "7", "", r) },
		func() error { return x.PutTag("docker.io/library/redis", "6", "", r) },
		func() error { return x.PutLocalTag("ghcr.io/site/app", "v1", r) },
		func() error { return x.PutRepository("docker.io/library/alpine") },
		func() error { return x.PutRepository("docker.io/library/alpine") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"docker.io/library/alpine", "docker.io/library/redis", "ghcr.io/site/app"}
	if got, err := x.Repositories(); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Repositories: %q, %v; want %q", got, err, want)
	}
}

func TestUsageSumsEveryRecord(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	sizes := []int64{0, 1, 4096, 1 << 33}
	var total int64
	for i, size := range sizes {
		total += size
		if err := x.PutBlob(digest.FromBytes([]byte{byte(i)}), BlobMeta{Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	// A record written again counts once.
	if err := x.PutBlob(digest.FromBytes([]byte{0}), BlobMeta{Size: 0}); err != nil {
		t.Fatal(err)
	}
	bytes, blobs, err := x.Usage()
	if err != nil || bytes != total || blobs != int64(len(sizes)) {
		t.Errorf("Usage: %d bytes in %d blobs, %v; want %d in %d", bytes, blobs, err, total, len(sizes))
	}
}

// TestTagRecords: every record of one tag (every Accept set, and the
// pushed one), or of every tag; never those of a tag it is a prefix of.
func TestTagRecords(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/a"
	rec := func(s string) TagRecord { return TagRecord{Digest: digest.FromString(s)} }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(x.PutTag(repo, "v1", "", rec("v1")))
	must(x.PutTag(repo, "v1", "application/vnd.oci.image.manifest.v1+json", rec("v1 oci")))
	must(x.PutTag(repo, "v1.2", "", rec("v1.2")))
	must(x.PutLocalTag(repo, "v1", rec("v1 pushed")))
	must(x.PutLocalTag(repo, "v2", rec("v2 pushed")))
	must(x.PutTag("docker.io/b", "v1", "", rec("elsewhere")))

	tests := []struct {
		tag  string
		want []string
	}{
		{"v1", []string{"v1", "v1 oci", "v1 pushed"}},
		{"v1.2", []string{"v1.2"}},
		{"v2", []string{"v2 pushed"}},
		{"v3", nil},
		{"", []string{"v1", "v1 oci", "v1.2", "v1 pushed", "v2 pushed"}},
	}
	for _, tt := range tests {
		got, err := x.TagRecords(repo, tt.tag)
		if err != nil {
			t.Fatalf("TagRecords(%q): %v", tt.tag, err)
		}
		var want []digest.Digest
		for _, s := range tt.want {
			want = append(want, digest.FromString(s))
		}
		var gotDigests []digest.Digest
		for _, r := range got {
			gotDigests = append(gotDigests, r.Digest)
		}
		sortDigests(want)
		sortDigests(gotDigests)
		if !reflect.DeepEqual(gotDigests, want) {
			t.Errorf("TagRecords(%q): %d records %v; want %v (%q)", tt.tag, len(got), gotDigests, want, tt.want)
		}
	}
}

func sortDigests(ds []digest.Digest) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
}

// TestReopenSeesEverythingCommitted: what was written before Close is
// there after the next Open, every kind of record; the index is a view a
// restart must not lose (crash-safety of single writes is Badger's, and
// the syncs of pushes, uploads and jobs are this package's).
func TestReopenSeesEverythingCommitted(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	const repo = "docker.io/library/alpine"
	d, ref := digest.FromString("manifest"), digest.FromString("referrer")
	meta := BlobMeta{Size: 9, MediaType: ocispec.MediaTypeImageManifest, Added: at(1), Refs: []digest.Digest{ref}}
	tag := TagRecord{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Size: 9, Checked: at(2)}
	pushed := TagRecord{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Size: 9, Checked: at(3)}
	upload := UploadRecord{Repo: repo, Size: 5, Started: at(4), Updated: at(5), HashState: []byte{1, 2}, Client: "10.0.0.1"}
	job := Job{Repo: repo, Tag: "v1", Digest: d, Enqueued: at(6), Attempts: 2, NextTry: at(7), LastError: "503"}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: ref, Size: 3, ArtifactType: "application/x-sig"}
	stats := RepoStats{Pulls: 3, Hits: 2}
	seen := at(8)

	steps := []error{
		x.PutBlob(d, meta),
		x.PutTag(repo, "latest", "", tag),
		x.PutLocalTag(repo, "v1", pushed),
		x.PutUpload("session", upload),
		x.Queue().PutJob(JobKey(repo, "v1", d), job),
		x.PutReferrer(repo, d, desc),
		x.PutLinks(repo, d),
		x.PutAccess(map[digest.Digest]time.Time{d: seen}),
		x.AddStats(map[string]RepoStats{repo: stats}),
		x.PutRepository("docker.io/library/empty"),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	x = reopen(t, x, dir)

	check := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s after reopen: %+v, %v; want %+v", what, got, err, want)
		}
	}
	gotMeta, err := x.Blob(d)
	check("blob", gotMeta, meta, err)
	gotTag, err := x.Tag(repo, "latest", "")
	check("tag", gotTag, tag, err)
	gotPushed, err := x.LocalTag(repo, "v1")
	check("pushed tag", gotPushed, pushed, err)
	gotUpload, err := x.Upload("session")
	check("upload", gotUpload, upload, err)
	gotJob, err := x.Queue().Job(JobKey(repo, "v1", d))
	check("job", gotJob, job, err)
	gotRefs, err := x.Referrers(repo, d)
	check("referrers", gotRefs, []ocispec.Descriptor{desc}, err)
	linked, err := x.HasLink(repo, d)
	check("link", linked, true, err)
	times, err := x.Accesses()
	check("access time", times[d].UTC(), seen, err)
	gotStats, err := x.Stats()
	check("stats", gotStats[repo], stats, err)
	repos, err := x.Repositories()
	check("repositories", repos, []string{"docker.io/library/alpine", "docker.io/library/empty"}, err)
}

// TestCommittedWritesSurviveAProcessCrash: a process killed without
// Close loses nothing it committed. The crash is played by copying the
// directory of a live index and opening the copy: the kernel's page
// cache, which outlives a killed process, is what the copy reads. (A
// power loss, which the syncs of pushes, uploads and jobs are for, is
// beyond what a test on a live kernel can play.)
func TestCommittedWritesSurviveAProcessCrash(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/site/app"
	d := digest.FromString("pushed")
	pushed := TagRecord{Digest: d, Checked: at(1)}
	job := Job{Repo: repo, Tag: "v1", Digest: d, Enqueued: at(2)}
	upload := UploadRecord{Repo: repo, Size: 3, Started: at(3)}
	steps := []error{
		x.PutBlob(d, BlobMeta{Size: 9, Pinned: true, Added: at(4)}),
		x.PutBlob(digest.FromString("mirrored"), BlobMeta{Size: 1}),
		x.PutLocalTag(repo, "v1", pushed),
		x.Queue().PutJob(JobKey(repo, "v1", d), job),
		x.PutUpload("session", upload),
		x.PutLinks(repo, d),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	crashed := t.TempDir()
	copyDir(t, x.db.Opts().Dir, crashed)

	y := mustOpen(t, crashed)
	if got, err := y.LocalTag(repo, "v1"); err != nil || got != pushed {
		t.Errorf("pushed tag after the crash: %+v, %v; want %+v", got, err, pushed)
	}
	if got, err := y.Queue().Job(JobKey(repo, "v1", d)); err != nil || got != job {
		t.Errorf("job after the crash: %+v, %v; want %+v", got, err, job)
	}
	if got, err := y.Upload("session"); err != nil || !reflect.DeepEqual(got, upload) {
		t.Errorf("upload after the crash: %+v, %v; want %+v", got, err, upload)
	}
	if m, err := y.Blob(d); err != nil || !m.Pinned {
		t.Errorf("pinned blob after the crash: %+v, %v", m, err)
	}
	if _, blobs, err := y.Usage(); err != nil || blobs != 2 {
		t.Errorf("after the crash: %d blobs, %v; want 2", blobs, err)
	}
	if ok, err := y.HasLink(repo, d); err != nil || !ok {
		t.Errorf("link after the crash: %v, %v", ok, err)
	}
}

// copyDir copies the files of src into dst as they are now.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil || path == src {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
