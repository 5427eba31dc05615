package s3test_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// minio-go's idle connections to the killed server end on their own.
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// TestDownUpKeepsData: Down refuses requests and Up serves them again, on
// the same endpoint, with what was written before.
func TestDownUpKeepsData(t *testing.T) {
	srv := s3test.Own(t)
	bucket := srv.Bucket(t)
	admin := srv.Admin(t)
	ctx := context.Background()
	body := []byte("kept across a restart")
	if _, err := admin.PutObject(ctx, bucket, "k", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Down()
	down, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := admin.StatObject(down, bucket, "k", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a stopped server answered")
	}
	srv.Up(t)
	o := srv.Object(t, bucket, "k")
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after Up: %q, %v; want %q", got, err, body)
	}
}
