package tier_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/cache/storetest"
	"github.com/wharf-mirror/wharf/cache/tier"
)

// minio is the MinIO server of the tests over S3, started by the first of
// them; TestMain stops it.
var minio s3test.Shared

// TestConformanceOverS3 runs the table with the production pairing: a
// bucket of a real MinIO as the shared tier (skipped without a MinIO
// binary, unless WHARF_S3_REQUIRED is set).
func TestConformanceOverS3(t *testing.T) {
	srv := minio.Get(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		o := bucketOptions(t, srv)
		localDir := t.TempDir()
		return func(t *testing.T) cache.Store {
			return newTier(t, openDisk(t, localDir), openS3(t, o), tier.Options{})
		}
	})
}

// TestReplicaWithAnEmptyDiskServesTheBucket: what one replica put,
// another with an empty local tier serves from the bucket (through the S3
// store's reader) and then from its own disk, once the promotion checked
// the bytes.
func TestReplicaWithAnEmptyDiskServesTheBucket(t *testing.T) {
	srv := minio.Get(t)
	o := bucketOptions(t, srv)
	a := newTier(t, openDisk(t, t.TempDir()), openS3(t, o), tier.Options{})
	b := newTier(t, openDisk(t, t.TempDir()), openS3(t, o), tier.Options{})
	done := watch(b)
	blob, d := content(t, 3<<20) // past one GET's first buffer
	putIn(t, a, blob, d)
	c, err := b.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, local := c.(*os.File); local {
		t.Error("the first open on the empty replica is a local file")
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("read from the bucket: %d bytes, %v; want the %d put", len(got), err, len(blob))
	}
	if err := <-done; err != nil {
		t.Fatalf("promotion: %v", err)
	}
	c, err = b.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, local := c.(*os.File); !local {
		t.Errorf("after the promotion Open returned a %T, want the local *os.File", c)
	}
}

// bucketOptions reach a new bucket on srv as its root user.
func bucketOptions(t *testing.T, srv *s3test.Server) s3.Options {
	return s3.Options{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket(t), Region: "us-east-1",
		AccessKey: srv.User, SecretKey: srv.Key, PathStyle: true,
	}
}

// openS3 opens the S3 store, closed when t ends (after the tier over it:
// cleanups run last first).
func openS3(t *testing.T, o s3.Options) *s3.Store {
	t.Helper()
	s, _, err := s3.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
