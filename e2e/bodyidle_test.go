package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestIdleUploadBodyIsCut: a PATCH whose body goes silent is closed by
// wharf within the body idle timeout; the session keeps the chunks it
// acknowledged before, and the client resumes and finishes the upload.
func TestIdleUploadBodyIsCut(t *testing.T) {
	const idle = 500 * time.Millisecond
	reg := upstreamtest.NewRegistry(t)
	p := startPusher(t, reg.URL, pushOpts{bodyIdle: idle})
	blob := randomBytes(t, 128<<10)
	const half = 64 << 10
	loc := startSession(t, p.URL+"/v2/team/slow/blobs/")
	if resp := send(t, "PATCH", p.URL+loc, blob[:half], "Content-Range", fmt.Sprintf("0-%d", half-1)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first chunk: %d", resp.StatusCode)
	}

	// A raw client: the second chunk's headers and a few bytes, then silence.
	conn, err := net.Dial("tcp", p.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\nContent-Range: %d-%d\r\n\r\n", loc, p.Host, half, half, 2*half-1)
	if _, err := conn.Write(blob[half : half+1000]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Bounded wait for the server to answer and close; today it never does.
	conn.SetReadDeadline(time.Now().Add(20 * idle))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a silent body within %v: %v", 20*idle, err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection not closed after the idle answer: %v", err)
	}
	el := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || el < idle || el > 10*idle {
		t.Errorf("silent body: %d after %v; want 408 after about %v", resp.StatusCode, el, idle)
	}
	if n := testutil.ToFloat64(p.Metrics.LimitHits.WithLabelValues("body_idle")); n != 1 {
		t.Errorf("wharf_limit_hits_total{limit=body_idle} = %v, want 1", n)
	}

	// The session still holds the acknowledged chunk; the client resumes.
	st := send(t, "GET", p.URL+loc, nil)
	if st.StatusCode != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", half-1) {
		t.Fatalf("after the cut: %d Range %q, want 0-%d", st.StatusCode, st.Header.Get("Range"), half-1)
	}
	if resp := send(t, "PATCH", p.URL+loc, blob[half:], "Content-Range", fmt.Sprintf("%d-%d", half, 2*half-1)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resumed chunk: %d", resp.StatusCode)
	}
	d := digest.FromBytes(blob)
	if resp := send(t, "PUT", p.URL+loc+"?digest="+d.String(), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish: %d %s", resp.StatusCode, readAll(t, resp))
	}
	assertBlob(t, p.URL+"/v2/team/slow/blobs/"+d.String(), blob)
}

// TestSlowSteadyUploadIsNotCut: a body that keeps sending, however slowly,
// is not cut however long it takes, and neither is a download that takes
// longer than the idle timeout.
func TestSlowSteadyUploadIsNotCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	p := startPusher(t, faulty.URL, pushOpts{bodyIdle: idle})
	blob := randomBytes(t, 12<<10)
	d := digest.FromBytes(blob)

	pr, pw := io.Pipe()
	go func() { // the client's body: 1 KiB every idle/3, 4 idle periods in all
		tick := time.NewTicker(idle / 3)
		defer tick.Stop()
		for off := 0; off < len(blob); off += 1 << 10 {
			<-tick.C
			if _, err := pw.Write(blob[off : off+1<<10]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v2/team/steady/blobs/uploads/?digest="+d.String(), pr)
	req.ContentLength = int64(len(blob))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("steady upload over %v: %d, want 201", time.Since(start), resp.StatusCode)
	}
	assertBlob(t, p.URL+"/v2/team/steady/blobs/"+d.String(), blob)

	// A download paced by the upstream over several idle periods.
	ld := pushBlobImage(t, reg, "team/pull:v1", 256<<10)
	faulty.SetFault(onBlobGets(ld, upstreamtest.Fault{BytesPerSec: 256 << 10}))
	got := send(t, "GET", p.URL+"/v2/team/pull/blobs/"+ld.String(), nil)
	b, err := io.ReadAll(got.Body)
	if err != nil || sha256Hex(b) != ld.Hex {
		t.Fatalf("slow download: %d bytes, err %v", len(b), err)
	}
}
