package push

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// pushReferrer pushes to repo through r, by digest, an artifact of
// artifactType whose subject is subject, and returns its digest.
func pushReferrer(t *testing.T, r *replica, repo cache.Repo, subject digest.Digest, artifactType string) digest.Digest {
	t.Helper()
	empty := ocispec.DescriptorEmptyJSON
	if err := r.PutBlob(ctx, repo, "test", Chunk{Body: bytes.NewReader(empty.Data), Length: empty.Size, Start: -1, End: -1}, empty.Digest); err != nil {
		t.Fatal(err)
	}
	empty.Data = nil
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: empty, Layers: []ocispec.Descriptor{empty},
		Subject:     &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 2},
		Annotations: map[string]string{"nonce": digest.FromBytes(randomBlob(t, 16)).Encoded()},
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(body)
	if _, err := r.PutManifest(ctx, repo, d.String(), ocispec.MediaTypeImageManifest, bytes.NewReader(body), nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// referrers lists the digests of subject's referrers in repo through r.
func referrers(t *testing.T, r *replica, repo cache.Repo, subject digest.Digest) []digest.Digest {
	t.Helper()
	list, err := r.Referrers(ctx, repo, subject, "")
	if err != nil {
		t.Fatalf("referrers of %s in %s: %v", subject, repo, err)
	}
	out := []digest.Digest{}
	for _, d := range list {
		out = append(out, d.Digest)
	}
	return out
}

// catalog lists the repositories r's catalog holds.
func catalog(t *testing.T, r *replica) []cache.Repo {
	t.Helper()
	repos, err := r.Repositories()
	if err != nil {
		t.Fatal(err)
	}
	return repos
}

// TestReferrersAndCatalogAcrossReplicas: a referrer pushed through a is
// listed by b's referrers API the moment a acknowledged it, with its
// artifact type, and is gone from b once deleted through a; a referrer of
// the same subject in another repository is listed there only; and b's
// catalog lists a repository pushed only through a.
func TestReferrersAndCatalogAcrossReplicas(t *testing.T) {
	cl := newCluster(t, minio.Get(t))
	a, b := cl.replica(t.TempDir()), cl.replica(t.TempDir())
	x, y := cl.repo("team/x"), cl.repo("team/y")
	img, err := pushImage(t, a, x, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := catalog(t, b); !slices.Contains(got, x) {
		t.Errorf("b's catalog %v lacks %s, pushed through a", got, x)
	}

	sig := pushReferrer(t, a, x, img.manifest, "application/vnd.example.sig")
	other := pushReferrer(t, b, y, img.manifest, "application/vnd.example.sbom") // the same subject, in y
	for name, r := range map[string]*replica{"a": a, "b": b} {
		if got := referrers(t, r, x, img.manifest); !slices.Equal(got, []digest.Digest{sig}) {
			t.Errorf("%s: referrers of %s in %s = %v; want [%s]", name, img.manifest, x, got, sig)
		}
		if got := referrers(t, r, y, img.manifest); !slices.Equal(got, []digest.Digest{other}) {
			t.Errorf("%s: referrers of %s in %s = %v; want [%s] (never %s's)", name, img.manifest, y, got, other, x)
		}
		if got := catalog(t, r); !slices.Contains(got, x) || !slices.Contains(got, y) {
			t.Errorf("%s's catalog %v lacks %s or %s", name, got, x, y)
		}
	}
	list, err := b.Referrers(ctx, x, img.manifest, "application/vnd.example.sig")
	if err != nil || len(list) != 1 || list[0].Digest != sig || list[0].ArtifactType != "application/vnd.example.sig" {
		t.Errorf("b: referrers of %s in %s by artifact type: %v, %v; want %s", img.manifest, x, list, err, sig)
	}
	if _, err := b.Manifest(ctx, x, sig.String(), accept); err != nil {
		t.Errorf("b: the referrer %s it lists: %v", sig, err)
	}

	if err := a.DeleteManifest(ctx, x, sig); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*replica{"a": a, "b": b} {
		if got := referrers(t, r, x, img.manifest); len(got) != 0 {
			t.Errorf("%s: referrers of %s in %s after the delete through a = %v; want none", name, img.manifest, x, got)
		}
	}
	if got := referrers(t, a, y, img.manifest); !slices.Equal(got, []digest.Digest{other}) {
		t.Errorf("a: referrers in %s after %s's delete = %v; want [%s]", y, x, got, other)
	}
}

// TestEmptyReplicaRebuildsReferrersAndCatalog: a replica that starts
// with an empty data directory loads the referrers and the catalog's
// repositories from the bucket, and answers them from its index while
// the bucket is frozen.
func TestEmptyReplicaRebuildsReferrersAndCatalog(t *testing.T) {
	srv := s3test.Own(t)
	cl := newCluster(t, srv)
	cl.recordsTimeout, cl.s3Timeout = 300*time.Millisecond, 2*time.Second
	a := cl.replica(t.TempDir())
	x := cl.repo("team/x")
	img, err := pushImage(t, a, x, "v1")
	if err != nil {
		t.Fatal(err)
	}
	sig := pushReferrer(t, a, x, img.manifest, "application/vnd.example.sig")
	byDigest := cl.repo("team/bydigest") // a manifest pushed by digest, no tag
	pushReferrer(t, a, byDigest, img.manifest, "application/vnd.example.sig")
	a.close()

	c := cl.replica(t.TempDir())
	srv.Freeze(t)
	t.Cleanup(srv.Thaw) // before the replicas close, if the test stops early
	if got := referrers(t, c, x, img.manifest); !slices.Equal(got, []digest.Digest{sig}) {
		t.Errorf("the rebuilt replica, bucket frozen: referrers of %s in %s = %v; want [%s]", img.manifest, x, got, sig)
	}
	if got := catalog(t, c); !slices.Contains(got, x) || !slices.Contains(got, byDigest) {
		t.Errorf("the rebuilt replica's catalog, bucket frozen: %v; want %s and %s", got, x, byDigest)
	}
	srv.Thaw()
}
