package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

const session = "6f1c2d3e-0000-4000-8000-000000000001"

// smallParts opens a store of 5 MiB parts, S3's smallest, on a bucket
// of its own, and returns its chunks.
func smallParts(t *testing.T) (*s3test.Server, string, s3.Options, s3.Chunks) {
	srv := shared.Get(t)
	bucket := srv.Bucket(t)
	o := options(srv, bucket)
	o.PartSize = 5 << 20
	return srv, bucket, o, open(t, o).Chunks()
}

// readsBack checks that chunk name holds want.
func readsBack(t *testing.T, c s3.Chunks, name string, want []byte) {
	t.Helper()
	rc, err := c.Open(ctx, session, name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Open %s: %d bytes, %v; want the %d written", name, len(got), err, len(want))
	}
}

// TestChunksReadWhatWasWritten: a chunk of unknown length larger than a
// part (sent in parts, one buffered at a time), one of known length, and
// an empty one read back whole; a session's chunks are listed once and
// deleted together.
func TestChunksReadWhatWasWritten(t *testing.T) {
	srv, bucket, _, c := smallParts(t)
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
		readsBack(t, c, tc.name, tc.body)
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

// allocated returns the bytes put allocated, which must take size bytes.
func allocated(t *testing.T, put func() (int64, error), size int64) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := put()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("put: %d, %v; want %d bytes", n, err, size)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// zeros reads as an endless run of zero bytes, allocating nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestChunkPutBufferedReadsBack: a body of unknown length streamed
// through a lent buffer reads back whole, whether it fits in the buffer,
// fills it exactly, or takes several parts; the buffer is the only large
// allocation; a body that breaks mid-way leaves no chunk and no
// multipart upload behind, and its own error is returned.
func TestChunkPutBufferedReadsBack(t *testing.T) {
	srv, bucket, o, c := smallParts(t)
	if c.PartSize() != o.PartSize {
		t.Fatalf("PartSize %d, want %d", c.PartSize(), o.PartSize)
	}
	buf := make([]byte, c.PartSize())
	for i, size := range []int{0, 1000, 5 << 20, 5<<20 + 1, 12 << 20} {
		body := random(t, size)
		name := fmt.Sprintf("%08d-b", i)
		n, err := c.PutBuffered(ctx, session, name, bytes.NewReader(body), buf)
		if err != nil || n != int64(size) {
			t.Fatalf("PutBuffered of %d bytes: %d, %v", size, n, err)
		}
		readsBack(t, c, name, body)
	}

	// The library's own path allocates a part per chunk; the lent
	// buffer's allocates none.
	const size = 48 << 20
	viaPut := allocated(t, func() (int64, error) {
		return c.Put(ctx, session, "00000008-big", io.LimitReader(zeros{}, size), -1)
	}, size)
	viaBuffer := allocated(t, func() (int64, error) {
		return c.PutBuffered(ctx, session, "00000009-big", io.LimitReader(zeros{}, size), buf)
	}, size)
	if viaBuffer+uint64(o.PartSize)/2 > viaPut {
		t.Errorf("a %d MiB chunk allocated %d KiB through a lent buffer, %d KiB through Put: want a part (%d KiB) less", size>>20, viaBuffer>>10, viaPut>>10, o.PartSize>>10)
	}

	broken := errors.New("client gone")
	body := io.MultiReader(io.LimitReader(zeros{}, 11<<20), iotest.ErrReader(broken))
	if _, err := c.PutBuffered(ctx, session, "00000010-broken", body, buf); !errors.Is(err, broken) {
		t.Fatalf("PutBuffered of a broken body: %v, want its error", err)
	}
	if _, err := c.Open(ctx, session, "00000010-broken"); err == nil {
		t.Error("a chunk whose body broke is readable")
	}
	core := minio.Core{Client: srv.Admin(t)}
	// Listed whole and filtered here: MinIO answers a listing by prefix
	// with nothing, which would make this check pass whatever is left.
	left, err := core.ListMultipartUploads(ctx, bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range left.Uploads {
		if strings.HasPrefix(u.Key, "mirror/uploads/") {
			t.Errorf("multipart upload left: %s (%s)", u.Key, u.UploadID)
		}
	}
}
