package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// pushBlobImage pushes a one-layer image with a layer of about size bytes
// and returns the layer's digest.
func pushBlobImage(t *testing.T, reg *upstreamtest.Registry, ref string, size int64) v1.Hash {
	t.Helper()
	img := upstreamtest.RandomImage(t, 1, size, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, ref, img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// onBlobGets applies f to every GET of blob d.
func onBlobGets(d v1.Hash, f upstreamtest.Fault) func(*http.Request) upstreamtest.Fault {
	return func(r *http.Request) upstreamtest.Fault {
		if isBlobGet(r, d) {
			return f
		}
		return upstreamtest.Fault{}
	}
}

// onFirstBlobGet applies f to the first GET of blob d only.
func onFirstBlobGet(d v1.Hash, f upstreamtest.Fault) func(*http.Request) upstreamtest.Fault {
	var mu sync.Mutex
	gets := 0
	return func(r *http.Request) upstreamtest.Fault {
		if !isBlobGet(r, d) {
			return upstreamtest.Fault{}
		}
		mu.Lock()
		defer mu.Unlock()
		if gets++; gets == 1 {
			return f
		}
		return upstreamtest.Fault{}
	}
}

func isBlobGet(r *http.Request, d v1.Hash) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String())
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func blobPath(m *mirror, d v1.Hash) string {
	return filepath.Join(m.Dir, "blobs", "sha256", d.Hex[:2], d.Hex)
}

func TestFirstByteBeforeUpstreamFinishes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/slow:v1", 1<<20)
	const stall = 3 * time.Second
	faulty.SetFault(onBlobGets(d, upstreamtest.Fault{StallAfter: 64 << 10, Stall: stall}))
	m := startMirror(t, faulty.URL, mirrorOpts{})

	start := time.Now()
	resp := get(t, m.URL+"/v2/app/slow/blobs/"+d.String())
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if first := time.Since(start); first >= stall {
		t.Fatalf("first 32 KiB took %v: wharf waited for the upstream to finish (stall %v) instead of streaming", first, stall)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if total := time.Since(start); total < stall {
		t.Fatalf("whole blob in %v, before the upstream's stall ended: the fault was not applied", total)
	}
	_ = rest
}

func TestFillOnceForConcurrentClients(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/popular:v1", 1<<20)
	// Pace the upstream so that all clients arrive while the fill runs.
	faulty.SetFault(onBlobGets(d, upstreamtest.Fault{BytesPerSec: 2 << 20}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	faulty.ResetCounts()

	const clients = 10
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(m.URL + "/v2/app/popular/blobs/" + d.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && sha256Hex(b) != d.Hex {
				err = errors.New("client got bytes that do not match the digest")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := faulty.BlobGets(); n != 1 {
		t.Errorf("%d concurrent clients caused %d upstream blob GETs, want 1", clients, n)
	}
	waitFills(t, m) // clients see the end once it verifies; storing follows
	if got := testutil.ToFloat64(m.Metrics.Fills.WithLabelValues("ok")); got != 1 {
		t.Errorf("wharf_fills_total{result=ok} = %v, want 1", got)
	}
}

func TestDigestMismatchKeepsNothing(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/corrupt:v1", 256<<10)
	corrupt := true
	var mu sync.Mutex
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if corrupt && isBlobGet(r, d) {
			// Paced, so the client has headers and bytes before the end.
			return upstreamtest.Fault{Corrupt: true, BytesPerSec: 1 << 20}
		}
		return upstreamtest.Fault{}
	})
	m := startMirror(t, faulty.URL, mirrorOpts{})
	url := m.URL + "/v2/app/corrupt/blobs/" + d.String()

	resp := get(t, url)
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("client read %d wrong bytes to a clean end (status %d); the connection must be aborted", len(b), resp.StatusCode)
	}
	if len(b) == 0 {
		t.Fatalf("client got no bytes before the abort (%v): the test did not stream", err)
	}
	waitFills(t, m)
	if _, err := os.Stat(blobPath(m, d)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("corrupt blob kept on disk: %v", err)
	}
	if got := testutil.ToFloat64(m.Metrics.Fills.WithLabelValues("digest_mismatch")); got != 1 {
		t.Errorf("wharf_fills_total{result=digest_mismatch} = %v, want 1", got)
	}

	// The next request, with the upstream healed, fetches again and succeeds.
	mu.Lock()
	corrupt = false
	mu.Unlock()
	before := faulty.BlobGets()
	resp = get(t, url)
	b, err = io.ReadAll(resp.Body)
	if err != nil || sha256Hex(b) != d.Hex {
		t.Fatalf("after healing: %d bytes, err %v", len(b), err)
	}
	if faulty.BlobGets() != before+1 {
		t.Errorf("the wrong blob was served from the cache instead of being fetched again")
	}
}

func TestLeavingClientDoesNotCancelFill(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/leave:v1", 1<<20)
	faulty.SetFault(onBlobGets(d, upstreamtest.Fault{BytesPerSec: 1 << 20}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	url := m.URL + "/v2/app/leave/blobs/" + d.String()
	faulty.ResetCounts()

	// The first client starts the fill, reads a little, and leaves.
	ctx, leave := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	first, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first.Body, make([]byte, 16<<10)); err != nil {
		t.Fatal(err)
	}
	// A second client is waiting on the same fill.
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	joined := make(chan struct{})
	go func() {
		resp, err := http.Get(url)
		close(joined) // headers come from the fill it follows
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{b, err}
	}()
	<-joined
	leave()
	first.Body.Close()

	r := <-done
	if r.err != nil || sha256Hex(r.b) != d.Hex {
		t.Fatalf("the client that stayed got %d bytes, err %v; want the whole blob", len(r.b), r.err)
	}
	waitFills(t, m)
	if _, err := os.Stat(blobPath(m, d)); err != nil {
		t.Fatalf("blob not cached after its first client left: %v", err)
	}
	if n := faulty.BlobGets(); n != 1 {
		t.Errorf("%d upstream blob GETs, want 1", n)
	}
}

// TestFillFinishesWithNoClientLeft: a client that starts a fill and leaves
// alone still leaves the blob cached.
func TestFillFinishesWithNoClientLeft(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/alone:v1", 512<<10)
	faulty.SetFault(onBlobGets(d, upstreamtest.Fault{BytesPerSec: 1 << 20}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	ctx, leave := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v2/app/alone/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1024))
	leave()
	resp.Body.Close()
	waitFills(t, m)
	if _, err := os.Stat(blobPath(m, d)); err != nil {
		t.Fatalf("fill abandoned by its only client was not finished: %v", err)
	}
}

func TestFillResumesAfterBrokenUpstream(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/flaky:v1", 1<<20)
	faulty.SetFault(onFirstBlobGet(d, upstreamtest.Fault{TruncateAfter: 300_000}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	resp := get(t, m.URL+"/v2/app/flaky/blobs/"+d.String())
	b, err := io.ReadAll(resp.Body)
	if err != nil || sha256Hex(b) != d.Hex {
		t.Fatalf("client got %d bytes, err %v; want the whole blob despite the broken upstream", len(b), err)
	}
	var ranges []string
	for _, r := range faulty.Requests() {
		if strings.HasSuffix(r.Path, "/blobs/"+d.String()) && r.Method == http.MethodGet {
			ranges = append(ranges, r.Header.Get("Range"))
		}
	}
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Errorf("upstream blob GETs carried Range %q; want a full GET then a resume from the last byte", ranges)
	}
}

func TestStalledUpstreamResumes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/stall:v1", 512<<10)
	faulty.SetFault(onFirstBlobGet(d, upstreamtest.Fault{StallAfter: 100_000, Stall: time.Minute}))
	m := startMirror(t, faulty.URL, mirrorOpts{stallTimeout: 300 * time.Millisecond})
	start := time.Now()
	resp := get(t, m.URL+"/v2/app/stall/blobs/"+d.String())
	b, err := io.ReadAll(resp.Body)
	if err != nil || sha256Hex(b) != d.Hex {
		t.Fatalf("got %d bytes, err %v", len(b), err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("a stalled upstream held the client for %v", el)
	}
}

func TestRangeRequests(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/range:v1", 1<<20)
	full := func() []byte {
		resp := get(t, reg.URL+"/v2/app/range/blobs/"+d.String())
		b, _ := io.ReadAll(resp.Body)
		return b
	}()
	faulty.SetFault(onBlobGets(d, upstreamtest.Fault{StallAfter: 128 << 10, Stall: 500 * time.Millisecond}))
	m := startMirror(t, faulty.URL, mirrorOpts{})
	url := m.URL + "/v2/app/range/blobs/" + d.String()
	size := int64(len(full))

	check := func(when string) {
		t.Helper()
		cases := []struct {
			rng    string
			status int
			want   []byte
		}{
			{"bytes=700000-700099", 206, full[700000:700100]},
			{"bytes=-100", 206, full[size-100:]},
			{"bytes=1000-", 206, full[1000:]},
			{"bytes=" + itoa(size) + "-", 416, nil},
		}
		for _, c := range cases {
			resp := get(t, url, "Range", c.rng)
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%s %s: %v", when, c.rng, err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("%s Range %s: status %d, want %d", when, c.rng, resp.StatusCode, c.status)
			}
			if c.want != nil && string(b) != string(c.want) {
				t.Errorf("%s Range %s: wrong bytes (%d)", when, c.rng, len(b))
			}
			if c.status == 416 && resp.Header.Get("Content-Range") != "bytes */"+itoa(size) {
				t.Errorf("%s 416 Content-Range %q", when, resp.Header.Get("Content-Range"))
			}
		}
	}
	check("while filling") // the first ranged request starts the fill
	waitFills(t, m)
	check("from cache")
	if n := faulty.BlobGets(); n != 1 {
		t.Errorf("ranged requests caused %d upstream blob GETs, want 1", n)
	}
}

func itoa(n int64) string { return strconvFormat(n) }

// waitFills waits until no fill is in flight.
func waitFills(t *testing.T, m *mirror) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(m.Metrics.FillsActive) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("fills still in flight after 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFillFailingBeforeItsFirstByteIsAV2Error: when a fill fails before
// any byte reached the client (here the upstream answers every GET of the
// blob with an empty body, so nothing ever verifies), the client gets a
// v2 error it can read, not a connection closed before any response.
func TestFillFailingBeforeItsFirstByteIsAV2Error(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := pushBlobImage(t, reg, "app/empty:v1", 64<<10)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if isBlobGet(r, d) {
			return upstreamtest.Fault{Body: []byte{}}
		}
		return upstreamtest.Fault{}
	})
	m := startMirror(t, faulty.URL, mirrorOpts{retries: -1})
	resp := get(t, m.URL+"/v2/app/empty/blobs/"+d.String())
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("status %d, then the connection was cut (%v): want a whole v2 error", resp.StatusCode, err)
	}
	if resp.StatusCode < 500 || !strings.Contains(string(body), `"errors"`) {
		t.Errorf("status %d %s, want a 5xx with a v2 error body", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "" || resp.Header.Get("Docker-Content-Digest") != "" {
		t.Errorf("an error answer carries the blob's headers: %v", resp.Header)
	}
}
