package e2e

import (
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestConstantMemoryPerRequest: serving a cached blob allocates about the
// same whether it is 1 MiB or 16 MiB (a hit is a file handed to sendfile,
// never a byte slice). Allocations are counted process-wide, the client's
// included, so the bound is loose; buffering the blob would blow it.
func TestConstantMemoryPerRequest(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	small := pushBlobImage(t, reg, "app/small:v1", 1<<20)
	large := pushBlobImage(t, reg, "app/large:v1", 16<<20)
	m := startMirror(t, reg.URL, mirrorOpts{})
	fetch := func(path string) {
		resp, err := http.Get(m.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, d := range []string{small.String(), large.String()} {
		fetch("/v2/app/x/blobs/" + d) // fill the cache
	}
	waitFills(t, m)

	allocated := func(path string) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fetch(path)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	a1 := allocated("/v2/app/small/blobs/" + small.String())
	a16 := allocated("/v2/app/large/blobs/" + large.String())
	t.Logf("allocated serving a cached blob: 1 MiB → %d bytes, 16 MiB → %d bytes", a1, a16)
	// Background work (the index, the in-process registry) allocates too;
	// a blob held in memory would add its 16 MiB on top.
	if a16 > a1+4<<20 {
		t.Errorf("serving a 16 MiB cached blob allocated %d bytes more than a 1 MiB one: memory grows with the blob", a16-a1)
	}
}
