package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestBlobLargerThanCacheIsStreamedNotKept: a blob bigger than the whole cap
// reaches the client (fetched once) and is not stored.
func TestBlobLargerThanCacheIsStreamedNotKept(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	img := upstreamtest.RandomImage(t, 1, 2<<20, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "app/huge:v1", img)
	m := startMirror(t, faulty.URL, mirrorOpts{maxSize: 1 << 20})
	layer := layerDigests(t, img)[0]

	resp := get(t, m.URL+"/v2/app/huge/blobs/"+layer.String())
	b, err := io.ReadAll(resp.Body)
	if err != nil || sha256Hex(b) != layer.Hex {
		t.Fatalf("client got %d bytes, err %v", len(b), err)
	}
	waitFills(t, m)
	if _, err := os.Stat(blobPath(m, layer)); err == nil {
		t.Fatal("a blob larger than the cache was kept")
	}
	if n := testutil.ToFloat64(m.Metrics.StoreErrors.WithLabelValues("too_large")); n != 1 {
		t.Errorf("wharf_store_errors_total{kind=too_large} = %v, want 1", n)
	}
	if n := faulty.BlobGets(); n != 1 {
		t.Errorf("%d upstream GETs for the blob, want 1", n)
	}
}

// TestFullDiskStillServesClients: the data directory is a small tmpfs,
// filled up until about 1 MiB is free, and the layer is 2 MiB. The client
// still gets the whole, correct blob (the rest streamed from the upstream),
// nothing partial is left, and the error is counted.
func TestFullDiskStillServesClients(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for a full disk")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 2<<20, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "app/big:v1", img)
	m := startMirror(t, reg.URL, mirrorOpts{dir: dir})
	layer := layerDigests(t, img)[0]
	fillDisk(t, dir, 1<<20)

	resp := get(t, m.URL+"/v2/app/big/blobs/"+layer.String())
	b, err := io.ReadAll(resp.Body)
	if err != nil || sha256Hex(b) != layer.Hex {
		t.Fatalf("with a full disk the client got %d bytes, err %v; want the whole blob", len(b), err)
	}
	waitFills(t, m)
	if n := testutil.ToFloat64(m.Metrics.StoreErrors.WithLabelValues("enospc")); n != 1 {
		t.Errorf("wharf_store_errors_total{kind=enospc} = %v, want 1", n)
	}
	if _, err := os.Stat(blobPath(m, layer)); err == nil {
		t.Error("the blob that did not fit was kept")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(entries) != 0 {
		t.Errorf("partial fill files left behind: %v", entries)
	}
}

// fillDisk writes a filler file until about free bytes are left on dir's
// filesystem.
func fillDisk(t *testing.T, dir string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, avail-free)); err != nil {
		t.Fatal(err)
	}
}
