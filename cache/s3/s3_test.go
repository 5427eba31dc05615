package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/storetest"
)

var ctx = context.Background()

// options reach bucket on srv as the server's root user.
func options(srv *s3test.Server, bucket string) s3.Options {
	return s3.Options{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		Region:    "us-east-1",
		AccessKey: srv.User,
		SecretKey: srv.Key,
		PathStyle: true,
		Prefix:    "/mirror/", // slashes at the ends are ignored
	}
}

func open(t *testing.T, o s3.Options) *s3.Store {
	t.Helper()
	s, _, err := s3.Open(ctx, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the storage table unchanged: each case gets a new
// bucket and staging directory, and reopening is a new Store on the
// bucket and a sweep of the directory (as the tier's local tier sweeps
// its tmp/ at start-up).
func TestConformance(t *testing.T) {
	srv := shared.Get(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		o := options(srv, srv.Bucket(t))
		dir := t.TempDir()
		return func(t *testing.T) cache.Store {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			return staged{open(t, o), dir}
		}
	})
}

// staged is the Store with a staging directory, as cache.Store wants.
type staged struct {
	*s3.Store
	dir string
}

func (s staged) TempFile() (*os.File, error) { return os.CreateTemp(s.dir, "stage-*") }

// tempFile creates an empty staged file, removed when t ends.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stage-*")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// stageRandom stages n random bytes and returns the file and their
// digest; the file is written in pieces so that no test holds a large
// blob in memory.
func stageRandom(t *testing.T, n int64) (*os.File, digest.Digest) {
	t.Helper()
	f := tempFile(t)
	t.Cleanup(func() { f.Close() })
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	return f, digest.NewDigest(digest.SHA256, h)
}

// unfinished lists the multipart uploads in progress in bucket.
func unfinished(t *testing.T, srv *s3test.Server, bucket string) []string {
	t.Helper()
	core := minio.Core{Client: srv.Admin(t)}
	res, err := core.ListMultipartUploads(ctx, bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var keys []string
	for _, u := range res.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

// recorder wraps the store's transport: it counts the bytes read from
// response bodies, keeps the Range header of every GET, and calls
// onPart with the running count of part bytes sent.
type recorder struct {
	next http.RoundTripper

	mu     sync.Mutex
	gets   []string
	read   atomic.Int64
	sent   atomic.Int64
	onPart func(sent int64)
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		r.mu.Lock()
		r.gets = append(r.gets, req.Header.Get("Range"))
		r.mu.Unlock()
	}
	if req.Method == http.MethodPut && req.URL.Query().Has("partNumber") && req.Body != nil {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &r.sent, each: r.onPart}
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &r.read}
	}
	return resp, err
}

func (r *recorder) getRanges() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.gets...)
}

type countingBody struct {
	io.ReadCloser
	n    *atomic.Int64
	each func(int64)
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	total := c.n.Add(int64(n))
	if c.each != nil {
		c.each(total)
	}
	return n, err
}

// TestInterruptedPutKeepsNothing: a multipart upload cancelled midway
// leaves no object and no unfinished upload (its parts are aborted), and
// the staged file to the caller.
func TestInterruptedPutKeepsNothing(t *testing.T) {
	srv := shared.Get(t)
	bucket := srv.Bucket(t)
	putCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := &recorder{onPart: func(sent int64) {
		if sent > 7<<20 { // past the first 5 MiB part
			cancel()
		}
	}}
	o := options(srv, bucket)
	o.PartSize = 5 << 20
	o.WrapTransport = func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }
	s := open(t, o)
	const size = 40 << 20
	f, d := stageRandom(t, size)
	err := s.Put(putCtx, f, d, size)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled midway: %v; want context.Canceled", err)
	}
	if sent := rec.sent.Load(); sent < 5<<20 || sent >= size {
		t.Fatalf("%d part bytes sent before the cancel; want a multipart upload stopped midway", sent)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after the cancelled Put: %v; want fs.ErrNotExist", err)
	}
	if left := unfinished(t, srv, bucket); len(left) != 0 {
		t.Errorf("unfinished uploads left: %v; want the cancelled one aborted", left)
	}
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("staged file after a failed Put: %v; want it left to the caller", err)
	}
	// The same file puts whole afterwards.
	if err := s.Put(ctx, f, d, size); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	if got, err := s.Stat(ctx, d); err != nil || got != size {
		t.Errorf("Stat after the second Put: %d, %v", got, err)
	}
}

// TestOpenAbortsAbandonedUploads: a crash mid-upload leaves its parts
// behind, invisible; a later Open aborts uploads older than
// AbandonedUploadAge, and only those (younger ones may be another
// replica's in progress).
func TestOpenAbortsAbandonedUploads(t *testing.T) {
	srv := shared.Get(t)
	bucket := srv.Bucket(t)
	core := minio.Core{Client: srv.Admin(t)}
	d := digest.FromString("abandoned")
	key := "mirror/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded()
	id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := random(t, 1<<20)
	if _, err := core.PutObjectPart(ctx, bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.NewMultipartUpload(ctx, bucket, "someone-else/data", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	o := options(srv, bucket)
	young, swept, err := s3.Open(ctx, o)
	if err != nil || swept.Uploads != 0 {
		t.Fatalf("Open with the default age: %+v, %v; want the young upload left alone", swept, err)
	}
	young.Close()
	if left := unfinished(t, srv, bucket); len(left) != 2 {
		t.Fatalf("unfinished uploads: %v; want the two begun", left)
	}
	o.AbandonedUploadAge = time.Nanosecond
	s, swept, err := s3.Open(ctx, o)
	if err != nil || swept.Uploads != 1 {
		t.Fatalf("Open: %+v, %v; want 1 upload aborted", swept, err)
	}
	defer s.Close()
	if left := unfinished(t, srv, bucket); !slices.Equal(left, []string{"someone-else/data"}) {
		t.Errorf("unfinished uploads after Open: %v; want only the one outside the store's keys", left)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of the abandoned upload's digest: %v; want fs.ErrNotExist", err)
	}
}
