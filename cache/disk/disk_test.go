package disk_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/storetest"
)

var ctx = context.Background()

func open(t *testing.T, dir string) *disk.Store {
	t.Helper()
	s, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func(t *testing.T) cache.Store { return open(t, dir) }
	})
}

// TestHitIsAnOSFile: http.ServeContent sends an *os.File with sendfile;
// anything else is copied through user space.
func TestHitIsAnOSFile(t *testing.T) {
	s := open(t, t.TempDir())
	f, _ := s.TempFile()
	defer f.Close()
	f.WriteString("layer")
	d := digest.FromString("layer")
	if err := s.Put(ctx, f, d, 5); err != nil {
		t.Fatal(err)
	}
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*os.File); !ok {
		t.Errorf("Open returned a %T, want *os.File", c)
	}
}

// TestOpenSweepsTemp: tmp/ holds only fills of the running process, so
// whatever is there at open is a leftover, however it is named.
func TestOpenSweepsTemp(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	for _, name := range []string{"fill-1", "fill-2", "not-ours"} {
		if err := os.WriteFile(filepath.Join(dir, "tmp", name), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "tmp", "dir"), 0o755)
	_, swept, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); swept != 4 || len(entries) != 0 {
		t.Errorf("swept %d, %d left in tmp/; want 4 swept, none left", swept, len(entries))
	}
}

// TestPutFromUploads: upload sessions stage under uploads/, outside tmp/;
// Put renames from anywhere on the data directory's filesystem.
func TestPutFromUploads(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	os.Mkdir(filepath.Join(dir, "uploads"), 0o755)
	f, err := os.Create(filepath.Join(dir, "uploads", "session"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("pushed")
	d := digest.FromString("pushed")
	if err := s.Put(ctx, f, d, 6); err != nil {
		t.Fatal(err)
	}
	enc := d.Encoded()
	if b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", enc[:2], enc)); err != nil || string(b) != "pushed" {
		t.Errorf("blobs/sha256/%s/%s: %q, %v", enc[:2], enc, b, err)
	}
}

// TestWalkSkipsForeignFiles: an operator's or another tool's file under
// blobs/ is not content, and a file in the wrong fan-out directory is not
// where Open would look for it.
func TestWalkSkipsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	d := digest.FromString("misplaced")
	for _, p := range []string{
		filepath.Join("blobs", "sha256", "ab", "README"),
		filepath.Join("blobs", "sha256", "zz", d.Encoded()),
		filepath.Join("blobs", "notes.txt"),
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := s.Walk(ctx, func(digest.Digest, int64) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("Walk: %d items, %v; want none", n, err)
	}
}

// TestInvalidDigestTouchesNothing: a digest becomes a path; one that is
// not valid must not name a file anywhere.
func TestInvalidDigestTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	f, _ := s.TempFile()
	defer f.Close()
	bad := digest.Digest("sha256:../../../victim")
	if err := s.Put(ctx, f, bad, 0); err == nil {
		t.Error("Put under an invalid digest succeeded")
	}
	if err := s.Delete(ctx, bad); err == nil {
		t.Error("Delete of an invalid digest succeeded")
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("a file outside blobs/ was touched: %q, %v", b, err)
	}
}

// TestPutSyncsTheDirectoryAfterTheRename: a rename lives in its
// directory's entry, which a crash loses unless the directory itself is
// fsynced once the file is in it.
func TestPutSyncsTheDirectoryAfterTheRename(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	d := digest.FromString("durable")
	enc := d.Encoded()
	want := filepath.Join(dir, "blobs", "sha256", enc[:2])
	var synced []string
	s.OnSyncDir(func(dir string) error {
		if _, err := os.Stat(filepath.Join(dir, enc)); err != nil {
			t.Errorf("directory %s synced before the file was renamed into it: %v", dir, err)
		}
		synced = append(synced, dir)
		return nil
	})
	f, _ := s.TempFile()
	defer f.Close()
	f.WriteString("durable")
	if err := s.Put(ctx, f, d, 7); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != want {
		t.Errorf("directories synced: %q, want [%s]", synced, want)
	}
}
