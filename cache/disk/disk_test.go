package disk_test

import (
	"context"
	_ "crypto/sha512" // digest.SHA512 is usable only when linked
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// put stages content and puts it under d.
func put(t *testing.T, s *disk.Store, d digest.Digest, content string) {
	t.Helper()
	f, err := s.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f, d, int64(len(content))); err != nil {
		t.Fatalf("Put %s: %v", d, err)
	}
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

// TestLayout: content lives at blobs/<algorithm>/<first two hex>/<hex>,
// and nowhere else under blobs/; a data directory laid out so by an
// earlier run (or restored from a backup) is read by a new one. The
// layout is a contract with every data directory already written.
func TestLayout(t *testing.T) {
	tests := []struct {
		name    string
		content string
		d       digest.Digest
	}{
		{"layer", "layer", digest.FromString("layer")},
		{"empty blob", "", digest.FromString("")},
		{"sha512", "layer", digest.SHA512.FromString("layer")},
	}
	for _, tt := range tests {
		enc := tt.d.Encoded()
		rel := filepath.Join("blobs", tt.d.Algorithm().String(), enc[:2], enc)
		t.Run(tt.name+" put", func(t *testing.T) {
			dir := t.TempDir()
			put(t, open(t, dir), tt.d, tt.content)
			if files := filesUnder(t, filepath.Join(dir, "blobs")); len(files) != 1 || files[0] != rel {
				t.Errorf("files under blobs/: %q, want [%s]", files, rel)
			}
		})
		t.Run(tt.name+" read", func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, rel), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s := open(t, dir)
			if size, err := s.Stat(ctx, tt.d); err != nil || size != int64(len(tt.content)) {
				t.Errorf("Stat: %d, %v; want %d", size, err, len(tt.content))
			}
			c, err := s.Open(ctx, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if b, err := io.ReadAll(c); err != nil || string(b) != tt.content {
				t.Errorf("Open: %q, %v; want %q", b, err, tt.content)
			}
			var walked []digest.Digest
			s.Walk(ctx, func(d digest.Digest, _ int64) error { walked = append(walked, d); return nil })
			if len(walked) != 1 || walked[0] != tt.d {
				t.Errorf("Walk: %v, want [%s]", walked, tt.d)
			}
		})
	}
}

// filesUnder lists the regular files under root, relative to its parent.
func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(filepath.Dir(root), path)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTempFileStagesUnderTmp: staging is in tmp/, which Open sweeps and
// which shares the filesystem of blobs/, so that Put is one rename.
func TestTempFileStagesUnderTmp(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	f, err := s.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := filepath.Dir(f.Name()); got != filepath.Join(dir, "tmp") {
		t.Errorf("TempFile in %s, want %s", got, filepath.Join(dir, "tmp"))
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Errorf("TempFile: %v, %v; want an empty file", fi, err)
	}
}

// TestOpenSweepsOnlyTmp: the data directory also holds the index and the
// upload sessions, which a restart must keep (a client resumes its
// upload after it), and verified content.
func TestOpenSweepsOnlyTmp(t *testing.T) {
	dir := t.TempDir()
	d := digest.FromString("kept")
	put(t, open(t, dir), d, "kept")
	others := []string{filepath.Join("uploads", "3f1c"), filepath.Join("index", "000001.vlog"), "wharf.yaml"}
	for _, p := range others {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, swept, err := disk.Open(dir)
	if err != nil || swept != 0 {
		t.Fatalf("Open: swept %d, %v; want nothing to sweep", swept, err)
	}
	for _, p := range others {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s after Open: %v; want it kept", p, err)
		}
	}
	if size, err := s.Stat(ctx, d); err != nil || size != 4 {
		t.Errorf("content after Open: %d, %v", size, err)
	}
}

// TestMissingIsNotExistWithOrWithoutItsDirectory: a miss is fs.ErrNotExist
// whether the fan-out directory is absent or holds other content, and the
// error names the digest for the log.
func TestMissingIsNotExistWithOrWithoutItsDirectory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	stored := digest.FromString("stored")
	put(t, s, stored, "stored")
	// A digest in the same fan-out directory as stored, and one whose
	// directory does not exist.
	sibling := digest.NewDigestFromEncoded(digest.SHA256, stored.Encoded()[:2]+strings.Repeat("0", 62))
	lonely := digest.NewDigestFromEncoded(digest.SHA256, flipFirst(stored.Encoded()))
	for name, d := range map[string]digest.Digest{"sibling": sibling, "no directory": lonely} {
		_, err := s.Stat(ctx, d)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s: Stat: %v; want fs.ErrNotExist naming %s", name, err, d)
		}
		c, err := s.Open(ctx, d)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s: Open: %v; want fs.ErrNotExist naming %s", name, err, d)
		}
		if err := s.Delete(ctx, d); err != nil {
			t.Errorf("%s: Delete: %v, want nil", name, err)
		}
	}
}

func flipFirst(hex string) string {
	if hex[0] == '0' {
		return "1" + hex[1:]
	}
	return "0" + hex[1:]
}

// TestPutReportsAFailedDirectorySync: a rename the directory has not
// recorded durably may be lost in a crash, so the caller must hear of it
// and not index the content as stored.
func TestPutReportsAFailedDirectorySync(t *testing.T) {
	s := open(t, t.TempDir())
	failed := errors.New("EIO")
	s.OnSyncDir(func(string) error { return failed })
	f, _ := s.TempFile()
	defer f.Close()
	f.WriteString("layer")
	if err := s.Put(ctx, f, digest.FromString("layer"), 5); !errors.Is(err, failed) {
		t.Errorf("Put: %v; want the sync's error", err)
	}
}

// TestDeletedWhileReadStaysReadable: eviction may remove a file a client
// is downloading; the client's descriptor reads on to the end.
func TestDeletedWhileReadStaysReadable(t *testing.T) {
	s := open(t, t.TempDir())
	content := strings.Repeat("layer", 1000)
	d := digest.FromString(content)
	put(t, s, d, content)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Delete: %v, want fs.ErrNotExist", err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(head)+string(rest) != content {
		t.Errorf("reader after Delete: %d bytes, %v; want all %d", len(head)+len(rest), err, len(content))
	}
}
