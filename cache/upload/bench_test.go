package upload

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/s3"
)

// bucketIngest is the cache's Ingest with storage.s3 as far as the bytes
// go: the tier writes the bucket first.
type bucketIngest struct{ st *s3.Store }

func (in bucketIngest) Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, _ bool) error {
	return in.st.Put(ctx, f, d, size)
}

// BenchmarkPush64MiB times a 64 MiB push, sessions local to one node
// against sessions shared through the bucket, both ingesting into the
// bucket: in one request (monolithic), one PATCH and a PUT, four
// PATCHes of 16 MiB, and 64 PATCHes of 1 MiB (small chunks: an object
// and a state rewrite each, and too small to compose in the bucket).
//
//	go test -run '^$' -bench Push64MiB -benchtime 3x ./cache/upload/
func BenchmarkPush64MiB(b *testing.B) {
	srv := minio.Get(b)
	bucket := srv.Bucket(b)
	st, _, err := s3.Open(context.Background(), s3.Options{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKey: srv.User, SecretKey: srv.Key, PathStyle: true, Prefix: "bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, mode := range []string{"local", "shared"} {
		for _, shape := range []struct {
			name   string
			chunks int // 0: monolithic
		}{{"monolithic", 0}, {"one-patch", 1}, {"four-patches", 4}, {"64-patches", 64}} {
			b.Run(mode+"/"+shape.name, func(b *testing.B) {
				dir := b.TempDir()
				idx, err := index.Open(filepath.Join(dir, "index"), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer idx.Close()
				opts := Options{Dir: filepath.Join(dir, "uploads"), Records: idx, Ingest: bucketIngest{st}}
				if mode == "shared" {
					opts.Shared = Shared{Records: st.Records(), Chunks: st.Chunks()}
				}
				s, err := Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.SetBytes(64 << 20)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					body := randomBytes(64 << 20)
					b.StartTimer()
					push(b, s, body, shape.chunks)
				}
			})
		}
	}
}

func push(b *testing.B, s *Sessions, body []byte, chunks int) {
	ctx := context.Background()
	d := digest.FromBytes(body)
	st, err := s.Start(ctx, repo, "bench")
	if err != nil {
		b.Fatal(err)
	}
	last := Chunk{Body: bytes.NewReader(body), Length: int64(len(body)), Start: -1, End: -1}
	if chunks > 0 {
		n := len(body) / chunks
		for i := 0; i < chunks; i++ {
			// As docker sends them: chunked encoding, no length.
			if _, err := s.Write(ctx, repo, st.ID, Chunk{Body: bytes.NewReader(body[i*n : (i+1)*n]), Length: -1, Start: -1, End: -1}); err != nil {
				b.Fatal(err)
			}
		}
		last = Chunk{Start: -1, End: -1}
	}
	if err := s.Finish(ctx, repo, st.ID, last, d); err != nil {
		b.Fatal(err)
	}
}
