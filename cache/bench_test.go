package cache_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The hot paths: a manifest hit by tag and by digest, and opening a cached
// blob. They must stay free of index writes and upstream calls.
//
//	go test -run '^$' -bench . -benchmem ./cache/

func warmCache(b *testing.B) (*cache.Cache, cache.Repo, digest.Digest, digest.Digest) {
	reg := upstreamtest.NewRegistry(b)
	img := upstreamtest.RandomImage(b, 1, 64<<10, upstreamtest.DockerManifest)
	desc := upstreamtest.Push(b, reg, "bench/app:v1", img)
	up, err := upstream.New(upstream.Options{URL: reg.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { up.Close() })
	c, err := cache.Open(cache.Options{Dir: b.TempDir(), Origins: []cache.Origin{up}, TagTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	repo := cache.Repo{Upstream: up.Name(), Path: "bench/app"}
	if _, err := c.Manifest(context.Background(), repo, "v1", accept); err != nil {
		b.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	layer := digest.Digest(ld.String())
	blob, err := c.Blob(context.Background(), repo, layer)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, blob.Fill.Reader(context.Background(), 0))
	if err := blob.Fill.Wait(context.Background()); err != nil { // stored, not only read
		b.Fatal(err)
	}
	blob.Close()
	return c, repo, desc.Digest, layer
}

var accept = []string{
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
}

func BenchmarkManifestHitByTag(b *testing.B) {
	c, repo, _, _ := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := c.Manifest(ctx, repo, "v1", accept); err != nil || m.Fetched {
			b.Fatal(err)
		}
	}
}

func BenchmarkManifestHitByDigest(b *testing.B) {
	c, repo, d, _ := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := c.Manifest(ctx, repo, d.String(), accept); err != nil || m.Fetched {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlobHitOpen(b *testing.B) {
	c, repo, _, layer := warmCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blob, err := c.Blob(ctx, repo, layer)
		if err != nil || blob.File == nil {
			b.Fatal("not a hit", err)
		}
		blob.Close()
	}
}
