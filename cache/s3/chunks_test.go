package s3_test

import (
	"bytes"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/wharf-mirror/wharf/cache/s3"
)

const session = "6f1c2d3e-0000-4000-8000-000000000001"

// TestChunksReadWhatWasWritten: a chunk of unknown length larger than a
// part (sent in parts, one buffered at a time), one of known length, and
// an empty one read back whole; a session's chunks are listed once and
// deleted together.
func TestChunksReadWhatWasWritten(t *testing.T) {
	srv := shared.Get(t)
	bucket := srv.Bucket(t)
	o := options(srv, bucket)
	o.PartSize = 5 << 20
	c := open(t, o).Chunks()
	big, small := random(t, 12<<20), random(t, 1000)
	for _, tc := range []struct {
		name string
		body []byte
		size int64
	}{{"00000000-a", big, -1}, {"00000001-b", small, int64(len(small))}, {"00000002-c", nil, -1}} {
		n, err := c.Put(ctx, session, tc.name, bytes.NewReader(tc.body), tc.size)
		if err != nil || n != int64(len(tc.body)) {
			t.Fatalf("Put %s: %d, %v; want %d bytes", tc.name, n, err, len(tc.body))
		}
		rc, err := c.Open(ctx, session, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, tc.body) {
			t.Fatalf("Open %s: %d bytes, %v; want the %d written", tc.name, len(got), err, len(tc.body))
		}
	}
	if _, err := c.Put(ctx, "6f1c2d3e-0000-4000-8000-000000000002", "x", strings.NewReader("other"), 5); err != nil {
		t.Fatal(err)
	}
	var sessions []string
	if err := c.Sessions(ctx, func(s string) error { sessions = append(sessions, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sessions, []string{session, "6f1c2d3e-0000-4000-8000-000000000002"}) {
		t.Errorf("Sessions: %v, want each session once", sessions)
	}
	if err := c.DeleteSession(ctx, session); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys(t, bucket, "mirror/uploads/"); !slices.Equal(keys, []string{"mirror/uploads/6f1c2d3e-0000-4000-8000-000000000002/x"}) {
		t.Errorf("after DeleteSession: %v, want only the other session's chunk", keys)
	}
	if err := c.Delete(ctx, session, "00000000-a"); err != nil {
		t.Errorf("Delete of a missing chunk: %v", err)
	}
}

// TestChunkNamesStayUnderUploads: a session or chunk name that is not one
// plain segment is refused before any request.
func TestChunkNamesStayUnderUploads(t *testing.T) {
	srv := shared.Get(t)
	c := open(t, options(srv, srv.Bucket(t))).Chunks()
	for _, bad := range [][2]string{{"..", "x"}, {session, ".."}, {"a/b", "x"}, {session, "x/y"}, {"", "x"}, {session, "x y"}} {
		if _, err := c.Put(ctx, bad[0], bad[1], strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put %q/%q: accepted", bad[0], bad[1])
		}
		if _, err := c.Open(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("Open %q/%q: accepted", bad[0], bad[1])
		}
	}
	if err := c.DeleteSession(ctx, "../records"); err == nil {
		t.Error("DeleteSession of ../records: accepted")
	}
}

// TestChunkPutFailsWhenTheStoreFreezes: a store that stops answering
// mid-chunk fails the Put within its timeout (twice it, the watchdog),
// and leaves no chunk.
func TestChunkPutFailsWhenTheStoreFreezes(t *testing.T) {
	srv, s, _, _ := faultStore(t, 1000)
	c := s.Chunks()
	body := random(t, 8<<20)
	srv.Freeze(t)
	failsCleanly(t, "Put", 20*time.Second, func() error {
		_, err := c.Put(ctx, session, "00000000-a", bytes.NewReader(body), -1)
		return err
	})
	failsCleanly(t, "Open", 20*time.Second, func() error {
		rc, err := c.Open(ctx, session, "00000000-a")
		if err == nil {
			rc.Close()
		}
		return err
	})
	srv.Thaw()
	if _, err := c.Open(ctx, session, "00000000-a"); err == nil {
		t.Error("a chunk the store never took whole is readable")
	}
}

// TestOpenAbortsAbandonedChunkUploads: a chunk's multipart upload that a
// crash interrupted is aborted by a later Open, like content's.
func TestOpenAbortsAbandonedChunkUploads(t *testing.T) {
	srv := shared.Get(t)
	bucket := srv.Bucket(t)
	core := minio.Core{Client: srv.Admin(t)}
	if _, err := core.NewMultipartUpload(ctx, bucket, "mirror/uploads/"+session+"/00000000-a", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	o := options(srv, bucket)
	o.AbandonedUploadAge = time.Nanosecond
	s, swept, err := s3.Open(ctx, o)
	if err != nil || swept.Uploads != 1 {
		t.Fatalf("Open: %+v, %v; want the chunk's upload aborted", swept, err)
	}
	s.Close()
}

// TestChunkPutMemoryIsAPart: a chunk of unknown length costs about one
// part of memory however long it is, not its length.
func TestChunkPutMemoryIsAPart(t *testing.T) {
	srv := shared.Get(t)
	o := options(srv, srv.Bucket(t))
	o.PartSize = 5 << 20
	c := open(t, o).Chunks()
	const size = 48 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := c.Put(ctx, session, "00000000-big", io.LimitReader(zeros{}, size), -1)
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("Put: %d, %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(o.PartSize) {
		t.Errorf("a %d MiB chunk allocated %d MiB, want about a part (%d MiB)", size>>20, alloc>>20, o.PartSize>>20)
	} else {
		t.Logf("a %d MiB chunk allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	}
}

// zeros reads as an endless run of zero bytes, allocating nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
