package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/disk"
)

// TestHitIsAnOSFile: with the disk store, a hit hands proxy an *os.File,
// which http.ServeContent sends with sendfile.
func TestHitIsAnOSFile(t *testing.T) {
	c := openTest(t, t.TempDir())
	defer c.Close()
	d := ingestBytes(t, c, randomBytes(4096))
	b, err := c.OpenContent(d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.File.(*os.File); !ok {
		t.Errorf("a hit is a %T, want *os.File", b.File)
	}
}

// failingPut is the disk store with Put failing: a full or unreachable
// store at the last step.
type failingPut struct{ *disk.Store }

var errPut = errors.New("put refused")

func (failingPut) Put(context.Context, *os.File, digest.Digest, int64) error { return errPut }

// TestRefusedPutKeepsNothing: when the store refuses verified content,
// the cache indexes nothing, and leaves no file it staged itself (a
// manifest's) behind; Ingest's staged file is its caller's.
func TestRefusedPutKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	store, _, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir, Store: failingPut{store}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := randomBytes(4096)
	d := digest.FromBytes(body)
	if err := c.putBytes(context.Background(), d, body); !errors.Is(err, errPut) {
		t.Errorf("putBytes: %v, want the store's error", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("%d staged files left behind", len(entries))
	}
	f, err := c.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(body)
	if err := c.Ingest(context.Background(), f, d, int64(len(body)), true); !errors.Is(err, errPut) {
		t.Errorf("Ingest: %v, want the store's error", err)
	}
	if _, ok := c.HasContent(d); ok {
		t.Error("content indexed although the store refused it")
	}
}
