package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestKillDuringChunkedUploadRestartsClean runs bin/wharf, finishes some
// pushes, leaves a chunked upload with two chunks acknowledged and a third
// in flight, and kills wharf with SIGKILL. After a restart: finished
// content is intact, the unfinished upload resumes from the last
// acknowledged byte (the half chunk is gone) and completes with the right
// digest, `wharf verify` finds nothing wrong, and with a short
// --upload-expiry an abandoned session is swept with its file.
func TestKillDuringChunkedUploadRestartsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wharf as a process")
	}
	bin := buildWharf(t)
	reg := upstreamtest.NewRegistry(t)
	dir := t.TempDir()
	p := startWharfProc(t, bin, dir, reg.URL, "--anonymous-push")
	url := "http://" + p.addr
	base := url + "/v2/site/crash/blobs/"

	// Finished before the crash: a chunked blob and an image.
	done := randomBytes(t, 2<<20)
	loc := startSession(t, base)
	for off := 0; off < len(done); off += 1 << 20 {
		resp := send(t, "PATCH", url+loc, done[off:off+1<<20], "Content-Range", fmt.Sprintf("%d-%d", off, off+1<<20-1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH: %d", resp.StatusCode)
		}
		loc = resp.Header.Get("Location")
	}
	if resp := send(t, "PUT", url+loc+"?digest="+digest.FromBytes(done).String(), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	img := upstreamtest.RandomImage(t, 2, 256<<10, types.OCIManifestSchema1)
	if err := remote.Write(mustParse(t, p.addr+"/site/crash:v1"), img, client(t)...); err != nil {
		t.Fatal(err)
	}

	// Unfinished: two chunks acknowledged, a third half sent at the kill.
	blob := randomBytes(t, 3<<20)
	open := startSession(t, base)
	for off := 0; off < 2<<20; off += 1 << 20 {
		resp := send(t, "PATCH", url+open, blob[off:off+1<<20], "Content-Range", fmt.Sprintf("%d-%d", off, off+1<<20-1))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH: %d", resp.StatusCode)
		}
		open = resp.Header.Get("Location")
	}
	abandoned := startSession(t, base)
	send(t, "PATCH", url+abandoned, blob[:1000], "Content-Range", "0-999")

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", url+open, pr)
	req.ContentLength = 1 << 20
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", 2<<20, 3<<20-1))
	inflight := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		inflight <- err
	}()
	pw.Write(blob[2<<20 : 2<<20+512<<10])
	// The kill must find the half chunk in the session's file.
	session := filepath.Join(dir, "uploads", path.Base(strings.SplitN(open, "?", 2)[0]))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(session); err == nil && fi.Size() >= 2<<20+512<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the half chunk never reached %s", session)
		}
		time.Sleep(5 * time.Millisecond) // polling the file: no event to wait on across processes
	}
	p.kill()
	pw.CloseWithError(io.ErrClosedPipe)
	<-inflight

	p = startWharfProc(t, bin, dir, reg.URL, "--anonymous-push")
	url = "http://" + p.addr
	assertBlob(t, url+"/v2/site/crash/blobs/"+digest.FromBytes(done).String(), done)
	got, err := remote.Image(mustParse(t, p.addr+"/site/crash:v1"), client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("image pushed before the crash: %v", err)
	}

	st := send(t, "GET", url+open, nil)
	if st.StatusCode != http.StatusNoContent || st.Header.Get("Range") != fmt.Sprintf("0-%d", 2<<20-1) {
		t.Fatalf("unfinished upload after restart: %d Range %q, want 0-%d", st.StatusCode, st.Header.Get("Range"), 2<<20-1)
	}
	resp := send(t, "PATCH", url+open, blob[2<<20:], "Content-Range", fmt.Sprintf("%d-%d", 2<<20, 3<<20-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	d := digest.FromBytes(blob)
	if resp := send(t, "PUT", url+resp.Header.Get("Location")+"?digest="+d.String(), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish after resume: %d", resp.StatusCode)
	}
	assertBlob(t, url+"/v2/site/crash/blobs/"+d.String(), blob)
	p.stop(t)

	if out, err := exec.Command(bin, "verify", "--data", dir).CombinedOutput(); err != nil {
		t.Fatalf("wharf verify after the crash: %v\n%s", err, out)
	}

	t.Setenv("WHARF_UPLOAD_EXPIRY", "1s")
	p = startWharfProc(t, bin, dir, reg.URL, "--anonymous-push")
	url = "http://" + p.addr
	waitFor(t, "the abandoned upload to expire", func() bool {
		resp, err := http.Get(url + abandoned)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
	if left, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(left) != 0 {
		t.Errorf("%d files left in uploads/", len(left))
	}
	p.stop(t)
}
